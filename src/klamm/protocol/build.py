"""Build a kio message of any version from plain Python values.

kio has one frozen dataclass per API version. Handlers describe a response once, as keyword
arguments holding the union of the fields of every version they serve; `build(cls, **fields)`
keeps the fields `cls` has, converts plain values to what kio's writers expect (ints to
`ErrorCode`, milliseconds to `timedelta`, dicts to nested entities) and leaves out the fields
other versions of the same message have. A name that no version of the message has raises
TypeError (it is a typo, and silently dropping it would hide a missing field from every client),
and so does a required field the handler did not give: a version mismatch is a bug, not
something to paper over with a default.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import pkgutil
import re
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


# kio generates one module per API, version and message: kio.schema.<api>.v<N>.<message>; a
# nested entity keeps its class name (the JSON schema's struct name) in every version's module.
_KIO_MODULE = re.compile(r"^(kio\.schema\.\w+)\.v\d+\.(\w+)$")


@cache
def _known_names(cls: type) -> frozenset[str]:
    """Field names of `cls` in any version of its message: what a handler may pass to build()."""
    names = {f.name for f in dataclasses.fields(cls)}
    match = _KIO_MODULE.match(cls.__module__)
    if match is None:  # not a versioned kio message: only its own fields are known
        return frozenset(names)
    package, message = match.groups()
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if re.fullmatch(r"v\d+", info.name) is None:
            continue
        try:
            module = importlib.import_module(f"{package}.{info.name}.{message}")
        except ModuleNotFoundError:  # this version has no such message (e.g. a header package)
            continue
        other = getattr(module, cls.__qualname__, None)
        if other is not None and dataclasses.is_dataclass(other):
            names.update(f.name for f in dataclasses.fields(other))
    return frozenset(names)


def build(cls: type[T], /, **fields: Any) -> T:
    """Instantiate kio entity `cls`, keeping only the fields it declares.

    Raises TypeError for a name no version of the message has, so a typo fails the first test
    that builds the message instead of leaving a field out of every response.
    """
    plan = _plan(cls)  # type: ignore[arg-type]  # classes are hashable; mypy can't see it for type[T]
    kwargs = {name: convert(fields[name]) for name, convert in plan if name in fields}
    if len(kwargs) != len(fields) and not _known_names(cls).issuperset(fields):  # type: ignore[arg-type]
        unknown = sorted(set(fields) - _known_names(cls))  # type: ignore[arg-type]
        if unknown:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: no version of this message has "
                f"field(s) {', '.join(unknown)}"
            )
    return cls(**kwargs)


def field_names(cls: type) -> frozenset[str]:
    return frozenset(name for name, _ in _plan(cls))


def to_dict(entity: Any) -> Mapping[str, Any]:
    """Shallow view of an entity's fields (for logging and tests)."""
    return {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}
