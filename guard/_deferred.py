"""Third-party imports that do work guard seldom needs, deferred to their first use.

Two libraries guard imports take, from modules they import whole, names that they use only in
cases guard rarely or never meets:

- ``jsonschema`` (``jsonschema._format``) takes ``is_valid_syntax`` from ``rfc3987_syntax``
  whenever it is installed, to check the ``iri`` / ``iri-reference`` formats; importing that
  package builds 39 Earley parsers of its grammar: 1.3-2.5 s here, paid by every process that
  imports ``jsonschema`` (``guard serve`` at start-up, any command validating an attestation).
  guard's verifying path checks those formats with its own linear-time checks
  (``guard.attest.cyclonedx_schema``), so only ``guard sbom`` validating what it writes calls it.
  It takes ``validate_rfc3986`` from ``rfc3986_validator`` too (one large regex compiled at
  import: 17 ms), for the ``uri`` formats, and its ``duration`` check imports ``isoduration``,
  which imports ``arrow`` (35-45 ms) for ``arrow.get`` in its parser alone: both load when a
  ``uri`` or a ``duration`` is first checked.
- ``typer.rich_utils`` (every ``--help`` page) takes ``Markdown`` from ``rich.markdown``
  (markdown-it and pygments) for ``rich_markup_mode="markdown"`` and ``Traceback`` from
  ``rich.traceback`` (rich.pretty, attrs) for pretty exceptions; guard uses neither.

``import_deferring(module, deferred)`` imports ``module`` with each module of ``deferred``
stood in for, during that import only, by a module of forwarders: a forwarder is a class that,
called or asked for an attribute, loads the real module (as any import would, once the stand-in
is gone) and answers from it. So nothing changes in what the library does, only when the real
module loads; a module already imported is used as it is; no import hook is left behind (nothing
global for a program that imports guard). ``import_jsonschema()`` is how guard imports
jsonschema; ``help_renderer_deferred()`` is ``guard.cli.run``'s: while a command runs, typer's
help renderer, when imported, is imported this way.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

JSONSCHEMA_DEFERRED: Mapping[str, Sequence[str]] = {
    "rfc3987_syntax": ("is_valid_syntax",),
    "rfc3986_validator": ("validate_rfc3986",),
    "arrow": (),
}
HELP_RENDERER = "typer.rich_utils"
HELP_RENDERER_DEFERRED: Mapping[str, Sequence[str]] = {
    "rich.markdown": ("Markdown",),
    "rich.traceback": ("Traceback",),
}

_LOCK = threading.RLock()


class StandIn(ModuleType):
    """A deferred module while its importer is being imported (then no longer in sys.modules)."""


def real_module(name: str) -> ModuleType:
    """The module ``name``, imported now if it is not (a stand-in of it is dropped first)."""
    with _LOCK:
        found = sys.modules.get(name)
        if isinstance(found, StandIn):
            del sys.modules[name]
        elif found is not None:
            return found
        return importlib.import_module(name)


class _Forwarding(type):
    """The metaclass of forwarders: a call or an attribute is the real name's."""

    _module: str
    _name: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return getattr(real_module(cls._module), cls._name)(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(getattr(real_module(cls._module), cls._name), attr)


def forwarder(module: str, name: str) -> type:
    """A stand-in for ``module.name``: a class, so that annotations such as ``Markdown | Text``
    still evaluate; calling it calls the real one."""
    return _Forwarding(name, (), {"_module": module, "_name": name, "__module__": module})


def _stand_in(module: str, names: Sequence[str]) -> StandIn | None:
    """A stand-in for ``module`` (None: it is imported already, or not installed)."""
    if module in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    stand_in = StandIn(module)
    stand_in.__spec__ = ModuleSpec(
        module, None, origin=spec.origin, is_package=spec.submodule_search_locations is not None
    )
    for name in names:
        setattr(stand_in, name, forwarder(module, name))

    def other(attr: str) -> Any:  # a name not listed: the real module's
        if attr.startswith("__") and attr.endswith("__"):  # the import system's probes (__path__)
            raise AttributeError(attr)
        return getattr(real_module(module), attr)

    stand_in.__getattr__ = other  # type: ignore[method-assign]
    return stand_in


@contextmanager
def _standing_in(deferred: Mapping[str, Sequence[str]]) -> Iterator[None]:
    """Each module of ``deferred`` (not imported yet) stood in for while this lasts."""
    with _LOCK:
        planted: dict[str, StandIn] = {}
        for name, names in deferred.items():
            stand_in = _stand_in(name, names)
            if stand_in is not None:
                planted[name] = sys.modules[name] = stand_in
        try:
            yield
        finally:
            for name, stand_in in planted.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]


def import_deferring(module: str, deferred: Mapping[str, Sequence[str]]) -> ModuleType:
    """Import ``module`` (nothing when it is imported already) with each module of ``deferred``
    (name -> the names ``module`` takes from it) replaced during this import by a stand-in."""
    found = sys.modules.get(module)
    if found is not None:
        return found
    with _standing_in(deferred):
        return importlib.import_module(module)


def import_jsonschema() -> ModuleType:
    """``import jsonschema``, its ``rfc3987_syntax`` loaded when an IRI is first checked."""
    return import_deferring("jsonschema", JSONSCHEMA_DEFERRED)


class _DeferringLoader:
    """The loader of a module whose execution runs with ``deferred`` stood in for (an import
    loader: ``importlib.abc.Loader``'s two methods; that module costs 6 ms)."""

    def __init__(self, loader: Any, deferred: Mapping[str, Sequence[str]]) -> None:
        self.loader = loader
        self.deferred = deferred

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self.loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        with _standing_in(self.deferred):
            self.loader.exec_module(module)


class _HelpRendererFinder:
    """A meta path finder for ``typer.rich_utils`` only: found where the path finder finds it,
    executed with ``HELP_RENDERER_DEFERRED`` stood in for."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> ModuleSpec | None:
        if fullname != HELP_RENDERER:
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = cast("Loader", _DeferringLoader(spec.loader, HELP_RENDERER_DEFERRED))
        return spec


@contextmanager
def help_renderer_deferred() -> Iterator[None]:
    """While this lasts, typer's help renderer is imported, if it is, with
    ``HELP_RENDERER_DEFERRED`` stood in for (no hook is left after it)."""
    if HELP_RENDERER in sys.modules:
        yield
        return
    finder = _HelpRendererFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
