"""Option groups: one definition per concern (signing, trust, registry access, output).

A group is a frozen dataclass whose fields are typer ``Annotated`` options (``SigningOptions``
and ``TrustOptions`` in ``trust_options``, ``RegistryOptions`` in ``registry_options``). A
command declares one parameter per group and is decorated with ``@grouped``::

    @grouped
    def verify(target: str, trust: TrustOptions = NO_TRUST, registry: RegistryOptions = ...): ...

typer then sees the group's fields as the command's options, in the group's place, and the
command receives one built group object: the option lists are written once, not per command.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _group_parameters(group: type[Any]) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(group)
    ]


def grouped(func: F) -> F:
    """Expand each parameter whose type is an option-group dataclass into the group's options
    (for typer), and build the group from them when the command runs."""
    signature = inspect.signature(func, eval_str=True)
    groups: dict[str, type[Any]] = {}
    parameters: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        kind = param.annotation
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            groups[param.name] = kind
            parameters.extend(_group_parameters(kind))
        else:
            parameters.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [p.name for p in parameters]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:  # pragma: no cover - a programming error, caught at import by the tests
        raise TypeError(f"{func.__name__}: option groups repeat the parameters {clashes}")

    @functools.wraps(func)
    def command(**values: Any) -> Any:
        for name, group in groups.items():
            fields = {f.name: values.pop(f.name) for f in dataclasses.fields(group)}
            values[name] = group(**fields)
        return func(**values)

    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return typing.cast(F, command)
