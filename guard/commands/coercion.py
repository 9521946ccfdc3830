"""Option values converted without pydantic where typer's result is plain (start-up: ~60 ms).

typer (0.29 here) converts every option and argument value with a pydantic ``TypeAdapter`` it
builds on first use, for every parameter of the command that runs (a ``None`` default included):
the first one imports pydantic (~45 ms) and each costs ~0.3 ms more. For the types guard's
commands use, typer's adapter only wraps plain functions or returns the value as given: a ``str``
stays itself, a ``Path`` is ``Path(value)`` checked by ``coerce_cli_path``, a ``Literal`` choice
goes through ``coerce_cli_choice``, a flag's ``bool`` or an ``int`` / ``float`` default is
itself. ``install(params)`` (``guard.cli`` calls it for every command it loads) gives each
parameter a converter that does exactly that and hands any other value, or any failure, to
typer's own converter, built then: errors and unusual inputs read as typer writes them.
``tests/cli/test_coercion.py`` compares both on every parameter of the CLI.

With a typer without this machinery (no ``typer._coercion``), ``install`` does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

try:
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path
except ImportError:  # an older typer (click's own conversion): nothing to do
    RuntimeParam = None  # type: ignore[assignment,misc]

Leaf = Callable[[Any, Any, Any], Any]  # (value, parameter, context) -> converted value
_DIGITS = re.compile(r"-?[0-9]+")


class _Unplain(Exception):
    """The value is not one whose conversion is known plain: typer's own adapter converts it."""


def _str(value: Any, param: Any, ctx: Any) -> Any:
    if type(value) is not str:
        raise _Unplain
    return value


def _bool(value: Any, param: Any, ctx: Any) -> Any:
    if type(value) is not bool:
        raise _Unplain
    return value


def _never(value: Any, param: Any, ctx: Any) -> Any:
    raise _Unplain


def _int(value: Any, param: Any, ctx: Any) -> Any:
    if type(value) is int:
        return value
    if type(value) is str and _DIGITS.fullmatch(value):
        return int(value)
    raise _Unplain


def _float(value: Any, param: Any, ctx: Any) -> Any:
    if type(value) is not float:
        raise _Unplain
    return value


def _path(annotation: Any, info: Any) -> Leaf | None:
    path_type = info.path_type if info.path_type is not None else annotation
    if path_type is not Path:  # str / bytes / a Path subclass: typer's adapter
        return None

    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if type(value) is not str:
            raise _Unplain
        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)

    return convert


def _choice(annotation: Any, info: Any) -> Leaf | None:
    if get_origin(annotation) is not Literal:
        return None
    choices = get_args(annotation)
    if not all(type(choice) is str for choice in choices):
        return None

    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if type(value) is not str:
            raise _Unplain
        return coerce_cli_choice(value, choices=choices, case_sensitive=info.case_sensitive, ctx=ctx)

    return convert


def _leaf(descriptor: Any, annotation: Any) -> Leaf | None:
    """The plain converter of one value of ``annotation``, or None (typer's adapter always)."""
    info = descriptor.parameter_info
    if info.parser is not None or descriptor.file_annotation is not None:
        return None
    if annotation is str:
        return _str
    if annotation is bool:
        return _bool  # a flag's value is a bool already (typer does not convert it); text: typer
    if annotation in (int, float):
        if info.min is not None or info.max is not None or getattr(info, "clamp", False):
            return None
        return _int if annotation is int else _float
    if annotation is Path:
        return _path(annotation, info)
    return _choice(annotation, info)


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainRuntimeParam(RuntimeParam):
        """typer's conversion of one parameter, pydantic left out where the result is plain."""

        descriptor: TypeDescriptor
        leaf: Leaf
        many: bool  # a list: each value converted
        typer: list[Any] = field(default_factory=list)  # typer's own converter, once built

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                if self.many:
                    items = value if isinstance(value, (list, tuple)) else [value]
                    return [self.leaf(item, param, ctx) for item in items]
                return self.leaf(value, param, ctx)
            except Exception:  # typer's own adapter converts it, or raises the error typer raises
                if not self.typer:
                    self.typer.append(build_runtime_param(self.descriptor))
                return self.typer[0]._coerce_value(value, param=param, ctx=ctx)


def plain_runtime_param(descriptor: Any) -> Any:
    """The converter ``install`` gives a parameter of ``descriptor`` (None: an older typer)."""
    if RuntimeParam is None:
        return None
    annotation, many = descriptor.annotation, False
    if get_origin(annotation) is list and len(get_args(annotation)) == 1:
        annotation, many = get_args(annotation)[0], True  # typer converts each value alike
    # no plain converter: typer's, built when a value comes (not for a None default, as typer does)
    leaf = _leaf(descriptor, annotation) or _never
    return PlainRuntimeParam(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        descriptor=descriptor,
        leaf=leaf,
        many=many,
    )


def install(params: Iterable[Any]) -> None:
    """Give every parameter in ``params`` (a command's, its help option included) a plain
    converter: typer's adapter is built only for a value the plain one does not know."""
    if RuntimeParam is None:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(param, "_runtime_param", False) is None:
            param._runtime_param = plain_runtime_param(descriptor)
