"""Build a kio message of any version from plain Python values.

kio has one frozen dataclass per API version. Handlers describe a response once, as keyword
arguments holding the union of the fields of every version they serve; `build(cls, **fields)`
keeps the fields `cls` has, converts plain values to what kio's writers expect (ints to
`ErrorCode`, milliseconds to `timedelta`, dicts to nested entities) and leaves out the rest. A
required field the handler did not give raises TypeError: a version mismatch is a bug, not
something to paper over with a default.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta, i64Timedelta

T = TypeVar("T")

_Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _to_error_code(value: Any) -> Any:
    return value if isinstance(value, ErrorCode) else ErrorCode(value)


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(milliseconds=value)


def _converter(annotation: Any) -> _Convert:
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        convert = _converter(inner[0]) if len(inner) == 1 else _identity
        return lambda value: None if value is None else convert(value)
    if origin is tuple:
        item = _converter(typing.get_args(annotation)[0])
        return lambda values: tuple(item(v) for v in values)
    if annotation is ErrorCode:
        return _to_error_code
    if annotation in (i32Timedelta, i64Timedelta):
        return _to_timedelta
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        cls = annotation
        return lambda value: value if isinstance(value, cls) else build(cls, **value)
    return _identity


@cache
def _plan(cls: Any) -> tuple[tuple[str, _Convert], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))


def build(cls: type[T], /, **fields: Any) -> T:
    """Instantiate kio entity `cls`, keeping only the fields it declares."""
    plan = _plan(cls)  # type: ignore[arg-type]  # classes are hashable; mypy can't see it for type[T]
    kwargs = {name: convert(fields[name]) for name, convert in plan if name in fields}
    return cls(**kwargs)


def field_names(cls: type) -> frozenset[str]:
    return frozenset(name for name, _ in _plan(cls))


def to_dict(entity: Any) -> Mapping[str, Any]:
    """Shallow view of an entity's fields (for logging and tests)."""
    return {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}
