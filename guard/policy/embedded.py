"""The embedded policy engine: regorus (PyPI ``gordon-to-regorus``) in-process.

A regorus Engine must stay on the thread that created it, so each thread gets its own, parsed
once from the library and reused for every evaluation on that thread. One generated module
(``guard_engine``) gathers every policy's ``deny`` and ``warn`` sets into one document, so an
admission costs one query.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic_core

from guard.errors import PolicyEngineError, PolicyLibraryError
from guard.policy.decision import Decision, Enforcement, decide
from guard.policy.library import PolicyLibrary, RegoFile

AGGREGATE_QUERY = "data.guard_engine.result"


def rust_error_text(err: BaseException) -> str:
    """A regorus error message without any Rust stack backtrace."""
    return str(err).split("Stack backtrace:", 1)[0].strip()


def aggregate_module(library: PolicyLibrary) -> str:
    """The generated Rego module collecting ``deny`` / ``warn`` of every policy."""
    entries = []
    for p in library.policies:
        fields = ", ".join(f'"{rule}": data.{p.package}.{rule}' for rule in p.rules)
        entries.append(f'\t"{p.name}": {{{fields}}},')
    return "package guard_engine\n\nresult := {\n" + "\n".join(entries) + "\n}\n"


def new_regorus_engine(modules: Sequence[RegoFile], extra: Sequence[tuple[str, str]] = ()) -> Any:
    """A fresh regorus Engine with the modules loaded (syntax errors name the file and line)."""
    # Rust errors carry a stack backtrace when RUST_BACKTRACE is set: keep messages readable.
    os.environ["RUST_BACKTRACE"] = "0"
    import regorus  # noqa: PLC0415

    engine = regorus.Engine()
    for module in modules:
        try:
            engine.add_policy(str(module.path), module.text)
        except RuntimeError as err:
            raise PolicyLibraryError(f"cannot load {module.path}: {rust_error_text(err)}") from err
    for name, text in extra:
        try:
            engine.add_policy(name, text)
        except RuntimeError as err:  # pragma: no cover - generated from a checked library
            raise PolicyLibraryError(f"cannot load generated module {name}: {rust_error_text(err)}") from err
    return engine


class EmbeddedEngine:
    """Evaluates the library with regorus; one regorus Engine per thread."""

    def __init__(self, library: PolicyLibrary, enforcement_for: Callable[[str], Enforcement]) -> None:
        self.library = library
        self._enforcement_for = enforcement_for
        self._aggregate = aggregate_module(library)
        self._local = threading.local()
        self._engine()  # load now, so a broken library fails at start-up, not on the first request

    def _engine(self) -> Any:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = new_regorus_engine(self.library.modules(), [("guard_engine.rego", self._aggregate)])
            self._local.engine = engine
        return engine

    def evaluate_raw(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}`` for one input."""
        engine = self._engine()
        try:
            # pydantic-core's serializer: ~4x faster than json.dumps on an 8 KiB input (same
            # text for our values: NaN / Infinity stay constants, so regorus still refuses them).
            engine.set_input_json(pydantic_core.to_json(document).decode())
            result = engine.eval_rule_as_json(AGGREGATE_QUERY)
        except (RuntimeError, TypeError, ValueError) as err:
            raise PolicyEngineError(f"embedded policy evaluation failed: {rust_error_text(err)}") from err
        raw = json.loads(result)
        if not isinstance(raw, dict):
            raise PolicyEngineError(
                "embedded policy evaluation gave no result: a policy rule is probably in conflict "
                f"(found {raw!r})"
            )
        return raw

    def evaluate_sync(self, document: Mapping[str, Any]) -> Decision:
        return decide(self.evaluate_raw(document), self._enforcement_for)

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        return self.evaluate_sync(document)

    async def aclose(self) -> None:
        return None
