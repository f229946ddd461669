"""Pydantic's errors said the gloss way: one line per problem, `<yaml.path>: <sentence>`, the path
taken from pydantic's own error location and the sentence naming what is expected."""

import re
from typing import Any

from pydantic import ValidationError

from common.errors import suggest

EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "dataclass": "a mapping",
    "none": "null",
}


def join_path(where: str, key: Any) -> str:
    """Join a key path for messages: 'training' + 'lr' -> 'training.lr' (odd keys quoted, so a
    message stays on one line)."""
    shown = str(key) if re.fullmatch(r"[\w\-]+", str(key)) else repr(str(key))
    return f"{where}.{shown}" if where else shown


def yaml_path(loc: tuple, data: Any) -> str:
    """The key path a user wrote, from an error location: union member tags (which are not keys
    of the input) are left out."""
    path, node = "", data
    for i, part in enumerate(loc):
        if has_key(node, part):
            node = node[part]
        elif not (isinstance(node, dict) and i == len(loc) - 1):
            continue  # a union member's tag, or a key inside a value that is not a mapping
        path = join_path(path, part)
    return path


def has_key(node: Any, part: Any) -> bool:
    """Whether `part` is a key of the mapping `node`, or an index of the list `node`."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)


def expected(error: dict[str, Any]) -> str:
    """What a type error asks for, as a phrase: 'an integer', "one of 'grid', 'search'"."""
    if error["type"] == "literal_error":
        return f"one of {error['ctx']['expected'].replace(' or ', ', ')}"
    kind = error["type"].rsplit("_", 1)[0]
    return EXPECTED.get(kind, error["msg"].removeprefix("Input should be ").lower())


def sentence(error: dict[str, Any]) -> str:
    """One error as a sentence with the fix."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if "sentence" in ctx:
        return ctx["sentence"]
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "missing":
        return "required key is missing; add it."
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"])
        return f"{value!r} is not allowed; choose {expected(error)}{suggest(value, choices)}."
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "the list is empty; give at least one."
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length", ctx.get("max_length"))
        return f"give {bound} {limit} entries, got {ctx.get('actual_length')}: {value!r}."
    return f"expected {expected(error)}, got {value!r}."


def problems(error: ValidationError, data: Any) -> list[str]:
    """Every error as `<path>: <sentence>`, the errors of one union (same path) merged into one."""
    by_path: dict[str, list[dict[str, Any]]] = {}
    for each in error.errors():
        by_path.setdefault(yaml_path(each["loc"], data), []).append(each)
    lines = []
    for path, errors in by_path.items():
        if len(errors) == 1 or any("sentence" in (e.get("ctx") or {}) for e in errors):
            lines += [f"{path}: {sentence(e)}" if path else sentence(e) for e in errors]
        else:
            options = " or ".join(dict.fromkeys(map(expected, errors)))
            lines.append(f"{path}: {errors[0].get('input')!r} is not valid; expected {options}.")
    return [one_line(line) for line in lines]


def one_line(text: str) -> str:
    """`text` with any character that would break it into lines (a key or value the user wrote
    may hold one) written as its escape, so each problem stays one line."""
    return "".join(char if char.splitlines() == [char] else repr(char)[1:-1] for char in text)
