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
again (a re-applied Deployment, a retried request, an identical object under another uid). Behind
that, the template cache keeps the violations of the rules (a policy's deny or warn set) that read
no uid or name (what each rule reads: ``guard.policy.reads``), keyed by the input without them: a
ReplicaSet's new pod is evaluated on the queries of the rules that read its name only, given the
parts of the input they read, and its decision is theirs merged with the kept violations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic_core

from guard.errors import PolicyEngineError, PolicyLibraryError
from guard.policy import kept_reads
from guard.policy.cache import (
    VOLATILE,
    DecisionCache,
    SteadyKeys,
    Template,
    TemplateCache,
    cacheable,
    document_json,
    loadable,
    reads_uid,
    reads_volatile,
    sent_json,
    steady_keys,
    tree_calls_non_deterministic,
)
from guard.policy.decision import Decision, Enforcement, decide, merged
from guard.policy.library import PolicyLibrary, RegoFile
from guard.policy.queries import COMBINED_RULE, combined_module, plan
from guard.policy.reads import EVERYTHING, LibraryReads, Path, library_reads

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


# The module texts of a library (its generated modules included) -> what each package reads, and
# whether its tree may call a non-deterministic builtin: found once per library, not again when a
# config reload makes a new engine of the same library.
_READS: dict[tuple[str, ...], tuple[LibraryReads, bool]] = {}
_READS_LOCK = threading.Lock()
Query = tuple[str, tuple[str, ...], str]  # (policy, its rules asked, the query's path)


def _library_reads(engine: Any, texts: tuple[str, ...]) -> tuple[LibraryReads, bool]:
    """``guard.policy.reads.library_reads`` of the modules loaded in ``engine`` (``texts``): what
    each package, and each rule of a package, reads, and what each rule's emptiness depends on
    (the ``VOLATILE`` fields it only prints left out); and whether the tree names a builtin of
    ``NON_DETERMINISTIC`` (then nothing may be cached). The shipped library's is kept
    (``guard.policy.kept_reads``; it calls none: tests/policy/test_cache.py checks its tree):
    looked up by its key, analysed only when it is another."""
    with _READS_LOCK:
        found = _READS.get(texts)
    if found is None:
        kept = kept_reads.lookup(texts, VOLATILE)
        found = (kept, False) if kept is not None else analyse_tree(engine)
        with _READS_LOCK:
            _READS.clear()  # one library at a time in a process, as a rule: keep the last only
            _READS[texts] = found
    return found


def analyse(engine: Any) -> LibraryReads:
    """The read analysis of the modules loaded in ``engine``, made now."""
    return analyse_tree(engine)[0]


def analyse_tree(engine: Any) -> tuple[LibraryReads, bool]:
    """``analyse``, and whether the tree names a non-deterministic builtin (for a tree too deep
    to read, the text's check, ``cacheable``, made before, is all there is)."""
    try:
        ast = engine.get_ast_as_json()
    except RuntimeError as err:  # pragma: no cover - the library was just loaded
        raise PolicyLibraryError(f"cannot read the library's syntax tree: {rust_error_text(err)}") from err
    try:
        return library_reads(ast, VOLATILE), tree_calls_non_deterministic(ast)
    except (ValueError, RecursionError):
        # a tree too deep to read (a very long expression): what any policy reads is not
        # known, so every policy counts as reading everything (no template cache: the
        # decisions are the same, only dearer)
        return LibraryReads({}, {}, {}), False


EVERYTHING_READ = frozenset({EVERYTHING})


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
        self.combined = [combined_module(p) for p, together in planned if together]
        self._queries: list[Query] = []
        ruled: dict[str, tuple[Path, str]] = {}  # a query's path -> (its package, its rule)
        for p, together in planned:
            package = tuple(p.package.split("."))
            if together:
                self._queries.append((p.name, p.rules, f"data.{p.package}.{COMBINED_RULE}"))
                ruled[self._queries[-1][2]] = (package, COMBINED_RULE)
                continue
            for r in p.rules:
                self._queries.append((p.name, (r,), f"data.{p.package}.{r}"))
                ruled[self._queries[-1][2]] = (package, r)
        texts = tuple(m.text for m in library.modules())
        # the texts of the modules loaded, generated ones last (what the read analysis is keyed by)
        self.texts = texts + tuple(t for _, t in self.combined)
        # what each policy reads, and each query (a deny or warn set, or both): empty without cache
        self.reads: dict[str, frozenset[Path]] = {}
        self.query_reads: dict[str, frozenset[Path]] = {}
        self.cache = (
            DecisionCache(cache_size, ignore_uid=not reads_uid(texts))
            if cache_size > 0 and cacheable(texts)
            else None
        )
        engine = self._engine()  # load now: a broken library fails at start-up, not on a request
        self.template_cache: TemplateCache | None = None
        emptiness: dict[tuple[Path, str], frozenset[Path]] = {}
        if self.cache is not None:
            found, non_deterministic = _library_reads(engine, self.texts)
            if non_deterministic:  # the tree names a clock, randomness, the network...
                self.cache = None
        if self.cache is not None:
            packages, rules, emptiness = found
            self.reads = {
                p.name: packages.get(tuple(p.package.split(".")), EVERYTHING_READ) for p in library.policies
            }
            self.query_reads = {path: rules.get(ruled[path], EVERYTHING_READ) for _, _, path in self._queries}
            steady = [
                (policy, rule)
                for policy, names, path in self._queries
                if not reads_volatile(self.query_reads[path])
                for rule in names
            ]
            if steady:
                self.template_cache = TemplateCache(cache_size, steady)
        self._volatile_queries = [
            q
            for q in self._queries
            if self.template_cache is None or any((q[0], r) not in self.template_cache.rules for r in q[1])
        ]
        # The volatile queries (their indexes) whose every rule only prints the volatile fields:
        # one that found nothing in a template's first input finds nothing in the next ones
        self._printing = frozenset(
            i
            for i, (_, names, path) in enumerate(self._volatile_queries)
            if all(not reads_volatile(emptiness.get((ruled[path][0], r), EVERYTHING_READ)) for r in names)
        )
        # what decide() lists as evaluated: every policy with a query
        self._policy_names = tuple(sorted({q[0] for q in self._queries}))
        # volatile queries known to find nothing -> the others, and the input's top-level parts
        # they read (None: all of it)
        self._plans: dict[frozenset[int], tuple[list[Query], frozenset[str] | None]] = {}
        self._volatile_sections = self._plan(frozenset())[1]

    def _plan(self, empty: frozenset[int]) -> tuple[list[Query], frozenset[str] | None]:
        """The volatile queries but those of ``empty``, and the input's top-level parts they read."""
        plan = self._plans.get(empty)
        if plan is None:
            queries = [q for i, q in enumerate(self._volatile_queries) if i not in empty]
            reads = [path for q in queries for path in self.query_reads.get(q[2], [()])]
            sections = None if any(not path for path in reads) else frozenset(path[0] for path in reads)
            plan = self._plans[empty] = (queries, sections)
        return plan

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
        engine = new_regorus_engine(self.library.modules(), self.combined)
        engines[id(self)] = (weakref.ref(self), engine)
        return engine

    def evaluate_raw(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}`` for one input."""
        try:
            # pydantic-core's serializer: ~4x faster than json.dumps on an 8 KiB input (same
            # text for our values: NaN / Infinity stay constants, so regorus still refuses them).
            text = document_json(document)
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError) as err:
            raise PolicyEngineError(f"embedded policy evaluation failed: {rust_error_text(err)}") from err
        return self._evaluate_text(text)

    def _evaluate_text(self, serialized: bytes, queries: Sequence[Query] | None = None) -> dict[str, Any]:
        """``evaluate_raw`` of the input serialized as ``serialized`` (JSON), on ``queries`` (all
        when None): the policies of those queries only."""
        engine = self._engine()
        raw: dict[str, Any] = {}
        queries = self._queries if queries is None else queries
        try:
            engine.set_input_json(serialized.decode())
            for policy, rules, path in queries:
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
        for policy, rules, _ in queries:
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
        templates = self.template_cache
        try:
            if templates is None:
                # the text the key is made of is the engine's input: serialized once. Without the
                # uid when the cache leaves it out, which it does only when no policy can read it.
                text = document_json(cache.sent(document))
                key = cache.key_of(text)
            else:
                keys = steady_keys(document, ignore_uid=cache.ignore_uid)
                key = keys.decision
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
            return decide(self.evaluate_raw(document), self._enforcement_for)  # raises the clear error
        found = cache.get(key)
        if found is None:
            if templates is None:
                found = decide(self._evaluate_text(text), self._enforcement_for)
            else:
                found = self._decide_steady(cache.sent(document), keys)
            cache.put(key, found)
        return found

    def _decide_steady(self, sent: Mapping[str, Any], keys: SteadyKeys) -> Decision:
        """The decision on ``sent`` (the document as the decision cache sends it): the violations
        of the rules reading no volatile field from the template cache when an earlier input
        was the same but for those fields, the others (and all of them on a miss) evaluated."""
        templates = self.template_cache
        assert templates is not None
        template = templates.get(keys.template)
        # An earlier input the same but for the volatile fields was taken by the engine; this one
        # is refused only if those fields' values make it so (NaN, Infinity, too deep): then it is
        # evaluated whole, and the engine's error is raised as without the cache.
        if template is None or not loadable(keys.volatile):
            decision = decide(self._evaluate_text(sent_json(sent, keys)), self._enforcement_for)
            if template is None:
                rules = templates.rules
                kept = tuple(v for v in decision.violations if (v.policy, v.source) in rules)
                empty: frozenset[int] = frozenset()
                if keys.shape is not None and self._printing:
                    found = {(v.policy, v.source) for v in decision.violations}
                    queries = self._volatile_queries
                    empty = frozenset(
                        i
                        for i in self._printing
                        if not any((queries[i][0], r) in found for r in queries[i][1])
                    )
                templates.put(keys.template, Template(kept, empty, keys.shape))
                if not self._plan(empty)[0]:  # what the next pods of the template will get
                    return dataclasses.replace(decision, steady=True)
            return decision
        # the volatile fields hold strings where the template's first input held them: the
        # queries that only print them and found nothing there find nothing here
        known = template.empty if keys.shape is not None and keys.shape == template.shape else frozenset()
        queries, sections = self._plan(known)
        steady = template.violations
        if not queries:  # nothing left to evaluate: whatever those fields' strings
            return Decision(violations=steady, policies=self._policy_names, steady=True)
        # the parts of the input those policies read, not all of it
        evaluated = decide(
            self._evaluate_text(sent_json(sent, keys, sections), queries), self._enforcement_for
        )
        return Decision(violations=merged(steady, evaluated.violations), policies=self._policy_names)

    async def evaluate(self, document: Mapping[str, Any]) -> Decision:
        return self.evaluate_sync(document)

    async def aclose(self) -> None:
        return None
