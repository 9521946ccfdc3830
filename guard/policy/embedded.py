"""The embedded policy engine: regorus (PyPI ``gordon-to-regorus``) in-process.

A regorus Engine must stay on the thread that created it, so each thread gets its own, parsed
once from the library and reused for every evaluation on that thread. An admission loads the
input once, then evaluates each policy's ``deny`` and ``warn`` rules with one ``eval_rule`` each.
Measured with regorus 0.13 (benchmarks/policy_eval.py): a reference to a rule of another package
costs ~8 us in a library this size, so one query gathering all 29 sets through a generated module
(``aggregate_module``, kept for the benchmark) cost more: the library's floor (rule sets that do
nothing) is 0.16 ms this way, 0.30 ms that way, and a plain pod went from ~0.55 to ~0.44 ms. The
price: helper rules read by both ``deny`` and ``warn`` of a policy are computed twice. One query
per policy (a generated ``{"deny": deny, "warn": warn}`` rule in its package) avoids that but
measured ~6% faster on AI pods and ~12% slower on plain pods, the common case.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic_core

from guard.errors import PolicyEngineError, PolicyLibraryError
from guard.policy.decision import Decision, Enforcement, decide
from guard.policy.library import PolicyLibrary, RegoFile

AGGREGATE_QUERY = "data.guard_engine.result"

# Per thread: id(EmbeddedEngine) -> (a weak reference to it, its regorus Engine on this thread).
# A regorus Engine is unsendable (dropped on another thread than its own, it raises): kept here,
# not on the EmbeddedEngine, it is dropped on its own thread, when the thread ends or when that
# thread next makes an engine after its EmbeddedEngine is gone, wherever that one was dropped.
_THREAD_ENGINES = threading.local()


def rust_error_text(err: BaseException) -> str:
    """A regorus error message without any Rust stack backtrace."""
    return str(err).split("Stack backtrace:", 1)[0].strip()


def aggregate_module(library: PolicyLibrary) -> str:
    """A generated Rego module collecting ``deny`` / ``warn`` of every policy in one document
    (``AGGREGATE_QUERY``): one query per admission, slower with regorus than evaluating each rule."""
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
        # (policy, rule, path) of every deny / warn set, evaluated one by one (see the module doc)
        self._rules = [(p.name, r, f"data.{p.package}.{r}") for p in library.policies for r in p.rules]
        self._engine()  # load now, so a broken library fails at start-up, not on the first request

    def _engine(self) -> Any:
        engines: dict[int, tuple[weakref.ref[EmbeddedEngine], Any]] | None
        engines = getattr(_THREAD_ENGINES, "engines", None)
        if engines is None:
            engines = _THREAD_ENGINES.engines = {}
        entry = engines.get(id(self))
        if entry is not None and entry[0]() is self:
            return entry[1]
        for key in [key for key, (owner, _) in engines.items() if owner() is None]:
            del engines[key]  # engines of EmbeddedEngines gone: dropped here, on their thread
        engine = new_regorus_engine(self.library.modules())
        engines[id(self)] = (weakref.ref(self), engine)
        return engine

    def evaluate_raw(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}`` for one input."""
        engine = self._engine()
        raw: dict[str, Any] = {}
        try:
            # pydantic-core's serializer: ~4x faster than json.dumps on an 8 KiB input (same
            # text for our values: NaN / Infinity stay constants, so regorus still refuses them).
            engine.set_input_json(pydantic_core.to_json(document).decode())
            for policy, rule, path in self._rules:
                text = engine.eval_rule_as_json(path)
                raw.setdefault(policy, {})[rule] = [] if text == "[]" else json.loads(text)
        except (RuntimeError, TypeError, ValueError) as err:
            raise PolicyEngineError(f"embedded policy evaluation failed: {rust_error_text(err)}") from err
        for policy, rule, _ in self._rules:
            value = raw[policy][rule]
            if not isinstance(value, list):
                raise PolicyEngineError(
                    f"embedded policy evaluation: {rule} of policy {policy} gave no set of violations "
                    f"(found {value!r}): expected '{rule} contains ...' rules"
                )
        return raw

    def evaluate_sync(self, document: Mapping[str, Any]) -> Decision:
        return decide(self.evaluate_raw(document), self._enforcement_for)

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        return self.evaluate_sync(document)

    async def aclose(self) -> None:
        return None
