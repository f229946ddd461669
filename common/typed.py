"""Build frozen dataclasses from untyped mappings (YAML, Ray configs) with precise errors: the key
path, what was expected, and a did-you-mean for unknown keys."""

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from common.errors import ConfigError

T = TypeVar("T")


def suggest(word: str, options: typing.Iterable[str]) -> str:
    """A ' (did you mean ...?)' hint naming the closest option, or '' when none is close."""
    candidates = [str(o) for o in options if str(o) != str(word)]
    close = difflib.get_close_matches(str(word), candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def join_path(where: str, key: str | int) -> str:
    """Join a key path for messages: 'training' + 'lr' -> 'training.lr' (odd keys quoted, so a
    message stays on one line)."""
    shown = str(key) if re.fullmatch(r"[\w\-]+", str(key)) else repr(str(key))
    return f"{where}.{shown}" if where else shown


def check_keys(data: Mapping[str, Any], allowed: typing.Iterable[str], where: str) -> None:
    """Reject keys that are not in `allowed`, naming the closest allowed key."""
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            known = f"allowed keys are {', '.join(sorted(allowed))}" if allowed else "none are allowed here"
            raise ConfigError(f"{join_path(where, key)}: unknown key{suggest(key, allowed)}; {known}.")


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build the dataclass `cls` from `data`, checking every key and value against its type hints."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys to values, got {data!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, fields, where)
    hints = typing.get_type_hints(cls)
    kwargs = {key: coerce(hints[key], value, join_path(where, key)) for key, value in data.items()}
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{join_path(where, missing[0])}: required key is missing; add it.")
    return cls(**kwargs)


def coerce(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against the type `hint`, converting where lossless (ints to floats, tuples)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and True in args and value is not True):
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(
            f"{where}: {value!r} is not allowed; choose one of {choices}{suggest(value, args)}."
        )
    if origin in (Union, types.UnionType):
        return _coerce_union(args, value, where)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin in (tuple, list):
        return _coerce_sequence(args, value, where)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}.")
        return dict(value)
    return _coerce_scalar(hint, value, where)


def _coerce_union(args: tuple, value: Any, where: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: a value is required here, got null.")
    for arg in args:
        if arg is not type(None):
            try:
                return coerce(arg, value, where)
            except ConfigError:
                pass
    raise ConfigError(f"{where}: {value!r} is not valid; expected {' or '.join(map(describe, args))}.")


def describe(hint: Any) -> str:
    """A short phrase for what a type hint accepts, for error messages."""
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _coerce_sequence(args: tuple, value: Any, where: str) -> tuple:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, got {value!r}.")
    item_hint = args[0] if args else Any
    return tuple(coerce(item_hint, item, join_path(where, i)) for i, item in enumerate(value))


def _coerce_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}.")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}.")
    if hint is float:
        return _to_float(value, where)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}.")
    if isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}.")


def _to_float(value: Any, where: str) -> float:
    """Numbers, and strings such as '1e-5' that YAML 1.1 leaves as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a number, got {value!r}.")
