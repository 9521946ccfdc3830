"""Third-party imports that do seconds of work guard seldom needs, deferred to their first use.

``rfc3987_syntax`` (imported by ``jsonschema._format`` whenever it is installed, to check the
``iri`` / ``iri-reference`` formats) builds 39 Earley parsers of its grammar when imported:
1.3-2.5 s here, paid by every process that imports ``jsonschema`` (``guard serve`` at start-up,
any command validating an attestation). guard's verifying path checks those formats with its
own linear-time checks (``guard.attest.sbom``), so only ``guard sbom`` validating what it writes
calls that library. ``install()`` (run by ``import guard``: it only adds a finder to
``sys.meta_path``) makes ``import rfc3987_syntax`` give a stand-in package whose
``is_valid_syntax`` loads the real one on its first call: validation is unchanged, its cost is
paid when (and if) an IRI is checked.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

DEFERRED = "rfc3987_syntax"
_HELPERS = "rfc3987_syntax.syntax_helpers"  # what the real package's __init__ star-imports


def _helpers() -> ModuleType:
    return importlib.import_module(_HELPERS)


def is_valid_syntax(term: str, value: str) -> Any:
    """``rfc3987_syntax.is_valid_syntax``, the real one loaded on the first call."""
    return _helpers().is_valid_syntax(term, value)


def _module_getattr(name: str) -> Any:
    return getattr(_helpers(), name)  # any other name: the real module, loaded now


class _StandInLoader:
    """An import loader (``importlib.abc.Loader``'s two methods; that module costs 6 ms)."""

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
        module.__getattr__ = _module_getattr  # type: ignore[method-assign]


class DeferredFinder:
    """A meta path finder: ``rfc3987_syntax`` where the path finder would find it, as a stand-in
    package of the same directory (its submodules, grammar and parsers, import from there when
    first used)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != DEFERRED:
            return None
        real = PathFinder.find_spec(fullname, path)
        if real is None or real.submodule_search_locations is None:
            return None  # not installed (or not the package we know): the normal import fails
        loader: Any = _StandInLoader()
        spec = ModuleSpec(fullname, loader, origin=real.origin, is_package=True)
        spec.submodule_search_locations = list(real.submodule_search_locations)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once; nothing when the module is already loaded)."""
    if DEFERRED in sys.modules or any(isinstance(f, DeferredFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, DeferredFinder())
