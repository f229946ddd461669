"""Typed settings on pydantic: the base model every spec section derives from, the scalar types
YAML needs, and models generated from the trial's dataclasses, so a setting is declared once.

Every model is frozen and refuses unknown keys; an unknown key's error names the allowed keys
and the closest one, so `common.validation_messages` can say it in one sentence."""

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    ValidationError,
    create_model,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from common.errors import suggest

BUILT_IN_ERRORS = frozenset(typing.get_args(ErrorType))


def _number_from_text(value: Any) -> Any:
    """YAML 1.1 reads 1e-5 (no dot) as text; a number written so is still a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _whole_number(value: Any) -> Any:
    """2.0 is the integer 2; 2.5 stays a float and is refused."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Number = Annotated[float, Strict(), BeforeValidator(_number_from_text)]
Integer = Annotated[int, Strict(), BeforeValidator(_whole_number)]
Boolean = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
SCALARS = {float: Number, int: Integer, bool: Boolean, str: Text}


def problem(loc: tuple, sentence: str, kind: str = "invalid") -> InitErrorDetails:
    """One problem at `loc` (a key path), said in `sentence`."""
    return InitErrorDetails(
        type=PydanticCustomError(kind, "{sentence}", {"sentence": sentence}), loc=loc, input=None
    )


def refuse(title: str, problems: Iterable[InitErrorDetails]) -> None:
    """Raise every problem at once as one ValidationError (nothing when there are none)."""
    if problems := list(problems):
        raise ValidationError.from_exception_data(title, problems)


def moved(error: dict[str, Any], prefix: tuple = ()) -> InitErrorDetails:
    """A reported error again, at `prefix` + its location (to re-raise it from an outer model)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind not in BUILT_IN_ERRORS:
        kind = PydanticCustomError(kind, "{sentence}", ctx)
    return InitErrorDetails(type=kind, loc=(*prefix, *error["loc"]), input=error.get("input"), ctx=ctx)


def validated_at(model: type[BaseModel], data: Any, prefix: tuple) -> BaseModel:
    """`model` from `data`, its errors located under `prefix` (for parts typed only once the
    loss they belong to is known)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationError.from_exception_data(
            model.__name__, [moved(e, prefix) for e in error.errors()]
        ) from None


class SpecModel(BaseModel):
    """A frozen settings section that refuses unknown keys, naming the allowed ones. `moved_keys`
    maps a key that belongs elsewhere to the sentence that says where."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
    moved_keys: ClassVar[dict[str, str]] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _name_unknown_keys(cls, data: Any, handler):
        try:
            return handler(data)
        except ValidationError as error:
            raise ValidationError.from_exception_data(
                cls.__name__, [cls._explained(e) for e in error.errors()]
            ) from None

    @classmethod
    def _explained(cls, error: dict[str, Any]) -> InitErrorDetails:
        if error["type"] != "extra_forbidden" or len(error["loc"]) != 1:
            return moved(error)
        key = error["loc"][0]
        if key in cls.moved_keys:
            return problem(error["loc"], cls.moved_keys[key])
        allowed = sorted(cls.model_fields)
        known = f"allowed keys are {', '.join(allowed)}" if allowed else "none are allowed here"
        return problem(error["loc"], f"unknown key{suggest(key, allowed)}; {known}.", "unknown_key")

    def written(self) -> dict[str, Any]:
        """The settings the user wrote (coerced to their types), without the defaults."""
        return self.model_dump(exclude_unset=True)


class WrittenModel(SpecModel):
    """A section recorded as the user wrote it: dumped without the defaults it was not given, so
    a study's record of its spec (study.json) holds what was asked, not what a default was."""

    @model_serializer(mode="wrap")
    def _as_written(self, handler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if key in self.model_fields_set}


def yaml_typed(hint: Any) -> Any:
    """A type hint with its scalars made strict the YAML way (no true for a number, no '5' for an
    integer; 1e-5 read as text is still a number)."""
    if hint in SCALARS:
        return SCALARS[hint]
    if typing.get_origin(hint) in (Union, types.UnionType):
        return Union[tuple(yaml_typed(arg) for arg in typing.get_args(hint))]  # noqa: UP007
    return hint


def model_of(cls: type, exclude: Iterable[str] = (), name: str = "", base: type[SpecModel] = SpecModel):
    """A SpecModel with the fields of dataclass `cls` (types and defaults), less `exclude`."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude or not field.init:
            continue
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        fields[field.name] = (
            yaml_typed(hints[field.name]),
            ... if default is dataclasses.MISSING else default,
        )
    return create_model(name or cls.__name__, __base__=base, __doc__=cls.__doc__, **fields)
