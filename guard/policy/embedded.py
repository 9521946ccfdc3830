"""The embedded policy engine: regorus (PyPI ``gordon-to-regorus``) in-process.

A regorus Engine must stay on the thread that created it, so each thread gets its own, parsed
once from the library and reused for every evaluation on that thread. An admission loads the
input once, then evaluates each policy's ``deny`` and ``warn`` rules with one ``eval_rule`` each.
Measured with regorus 0.13 (benchmarks/policy_eval.py): a reference to a rule of another package
costs ~8 us in a library this size, so one query gathering all 29 sets through a generated module
(``aggregate_module``, kept for the benchmark) cost more: the library's floor (rule sets that do
nothing) is 0.16 ms this way, 0.30 ms that way, and a plain pod went from ~0.55 to ~0.44 ms.
Helper rules read by both ``deny`` and ``warn`` of a policy would be computed twice: a policy
whose two sets share helpers that read the input is asked once, through a generated
``{"deny": deny, "warn": warn}`` rule in its package (``guard.policy.queries``); the others keep one
query per set (one query per policy for all of them measured ~12% slower on plain pods).

Decisions are cached (``guard.policy.cache``): an input the library has judged is not evaluated
again (a re-applied Deployment, a retried request, an identical object under another uid).
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
from guard.policy.cache import DecisionCache, cacheable, reads_uid
from guard.policy.decision import Decision, Enforcement, decide
from guard.policy.library import PolicyLibrary, RegoFile
from guard.policy.queries import COMBINED_RULE, combined_module, plan

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

    def __init__(
        self,
        library: PolicyLibrary,
        enforcement_for: Callable[[str], Enforcement],
        *,
        cache_size: int = 4096,
    ) -> None:
        self.library = library
        self._enforcement_for = enforcement_for
        # (policy, rules, path) of every query: one per deny / warn set (see the module doc), and
        # one for both where a policy's deny and warn share helpers (guard.policy.queries)
        planned = plan(library.policies)
        self._combined = [combined_module(p) for p, together in planned if together]
        self._queries: list[tuple[str, tuple[str, ...], str]] = []
        for p, together in planned:
            if together:
                self._queries.append((p.name, p.rules, f"data.{p.package}.{COMBINED_RULE}"))
            else:
                self._queries += [(p.name, (r,), f"data.{p.package}.{r}") for r in p.rules]
        texts = [m.text for m in library.modules()]
        self.cache = (
            DecisionCache(cache_size, ignore_uid=not reads_uid(texts))
            if cache_size > 0 and cacheable(texts)
            else None
        )
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
        engine = new_regorus_engine(self.library.modules(), self._combined)
        engines[id(self)] = (weakref.ref(self), engine)
        return engine

    def evaluate_raw(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}`` for one input."""
        try:
            # pydantic-core's serializer: ~4x faster than json.dumps on an 8 KiB input (same
            # text for our values: NaN / Infinity stay constants, so regorus still refuses them).
            text = pydantic_core.to_json(document)
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError) as err:
            raise PolicyEngineError(f"embedded policy evaluation failed: {rust_error_text(err)}") from err
        return self._evaluate_text(text)

    def _evaluate_text(self, serialized: bytes) -> dict[str, Any]:
        """``evaluate_raw`` of the input serialized as ``serialized`` (JSON)."""
        engine = self._engine()
        raw: dict[str, Any] = {}
        try:
            engine.set_input_json(serialized.decode())
            for policy, rules, path in self._queries:
                text = engine.eval_rule_as_json(path)
                if len(rules) == 1:
                    raw.setdefault(policy, {})[rules[0]] = [] if text == "[]" else json.loads(text)
                    continue
                both = json.loads(text)
                if not isinstance(both, dict) or set(both) != set(rules):  # say which rule is amiss
                    package = path.rsplit(".", 1)[0]
                    both = {r: json.loads(engine.eval_rule_as_json(f"{package}.{r}")) for r in rules}
                raw[policy] = both
        except (RuntimeError, TypeError, ValueError) as err:
            raise PolicyEngineError(f"embedded policy evaluation failed: {rust_error_text(err)}") from err
        for policy, rules, _ in self._queries:
            for rule in rules:
                value = raw[policy][rule]
                if not isinstance(value, list):
                    raise PolicyEngineError(
                        f"embedded policy evaluation: {rule} of policy {policy} gave no set of "
                        f"violations (found {value!r}): expected '{rule} contains ...' rules"
                    )
        return raw

    def evaluate_sync(self, document: Mapping[str, Any]) -> Decision:
        cache = self.cache
        if cache is None:
            return decide(self.evaluate_raw(document), self._enforcement_for)
        try:
            text = cache.keyed_text(document)
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
            return decide(self.evaluate_raw(document), self._enforcement_for)  # raises the clear error
        key = cache.key_of(text)
        found = cache.get(key)
        if found is None:
            # the text the key was made of is the engine's input: serialized once. Without the
            # uid when the cache leaves it out, which it does only when no policy can read it.
            found = decide(self._evaluate_text(text), self._enforcement_for)
            cache.put(key, found)
        return found

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        return self.evaluate_sync(document)

    async def aclose(self) -> None:
        return None
