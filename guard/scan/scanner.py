"""``guard scan``: sources -> inventory -> audit -> the result document.

``run_scan`` lists every kind of admission's kinds table from one source into the inventory,
resolves workloads, audits them through admission's engine (built from the same config) and
returns the ``ScanResult``. It raises only when the scan as a whole cannot run (a config that
does not load: ConfigError; nothing could be listed: InfrastructureError); everything else is in
the result, and ``partial`` says when something could not be looked at.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from guard import __version__
from guard.admission.pipeline import AdmissionEngine
from guard.config import GuardConfig
from guard.errors import InfrastructureError
from guard.policy.settings import EmbeddedEngineSettings
from guard.scan.audit import Auditor, WorkloadFacts
from guard.scan.findings import FindingBuilder, summarize, workload_result
from guard.scan.inventory import Inventory
from guard.scan.result import PolicyInfo, ScanInfo, ScanResult, Shard
from guard.scan.sources import ObjectSource
from guard.scan.targets import Scope, scan_targets

_CONTROLS = re.compile(r"^controls\s*:=\s*(\[.*?\])", re.MULTILINE | re.DOTALL)

# a kind not assessed for one of these reasons means the audit could not look at something
_PARTIAL_REASONS = frozenset({"forbidden", "error", "unknown-kind", "malformed"})


@dataclass(frozen=True)
class ScanOptions:
    namespaces: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    previous: ScanResult | None = None
    deadline_seconds: float = 60.0
    concurrency: int = 16


@dataclass(frozen=True)
class Progress:
    """What the CLI shows while a scan runs."""

    stage: Literal["listed", "evaluated"]
    done: int
    total: int | None


# A scan allocates many objects that live to its end (pages, the inventory, results): with the
# default thresholds the cyclic collector traverses them again and again (about a third of a warm
# 10k-pod scan). Collect young objects 70x less often while a scan runs; restored after it.
SCAN_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], SCAN_GC_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def scan_engine_config(config: GuardConfig) -> GuardConfig:
    """The config the scan's admission engine is built from: recalls are left to the auditor,
    which matches them on verified artifacts (so a finding names the layer or signer matched)."""
    return config.model_copy(update={"recalls": ()})


def config_hash(config: GuardConfig) -> str:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _library(config: GuardConfig) -> tuple[str | None, dict[str, tuple[str, ...]]]:
    """The library's digest and each policy's ``controls`` (None / {} for an OPA server)."""
    if not isinstance(config.policy.engine, EmbeddedEngineSettings) and config.policy.directory is None:
        return None, {}
    from guard.policy.library import load_library  # noqa: PLC0415

    library = load_library(config.policy.directory)
    digest = hashlib.sha256()
    for module in sorted(library.modules(), key=lambda m: m.package):
        digest.update(module.package.encode() + b"\0" + module.text.encode() + b"\0")
    controls: dict[str, tuple[str, ...]] = {}
    for policy in library.policies:
        found = _CONTROLS.search(policy.file.text)
        if found:
            try:
                parsed = json.loads(found.group(1))
            except ValueError:
                parsed = []
            controls[policy.name] = tuple(str(c) for c in parsed if isinstance(c, str))
    return "sha256:" + digest.hexdigest(), controls


def _first_seen(previous: ScanResult | None) -> Mapping[str, datetime]:
    if previous is None:
        return {}
    return {f.fingerprint: f.first_seen for f in previous.findings}


async def run_scan(
    config: GuardConfig,
    source: ObjectSource,
    options: ScanOptions = ScanOptions(),
    progress: Callable[[Progress], None] | None = None,
    *,
    engine: AdmissionEngine | None = None,
) -> ScanResult:
    """One audit. ``engine``: an admission engine built (without recalls) from ``config`` by the
    caller and kept across scans, so its verification cache is warm (a long-running scanner, the
    benchmark); by default one is built for this scan and closed after it."""
    with gc_tuned():
        return await _run_scan(config, source, options, progress, engine)


async def _run_scan(
    config: GuardConfig,
    source: ObjectSource,
    options: ScanOptions,
    progress: Callable[[Progress], None] | None,
    engine: AdmissionEngine | None,
) -> ScanResult:
    from guard.admission.wiring import build_engine  # noqa: PLC0415

    scan_id = uuid.uuid4().hex
    started = datetime.now(UTC)
    library_digest, controls = _library(config)
    # recalls are matched by the auditor on the verified artifacts (so a finding names what matched)
    owned = engine is None
    if engine is None:
        engine = await build_engine(scan_engine_config(config))
    try:
        targets = scan_targets(engine.kinds)
        scope = Scope.of(options.namespaces, options.shard)
        inventory = Inventory()
        outcome = source.collect(targets, scope, inventory)
        if progress is not None:
            progress(Progress("listed", outcome.listed_kinds, len(targets)))
        if outcome.source.type == "cluster" and outcome.listed_kinds == 0:
            why = "; ".join(n.message for n in outcome.not_assessed[:3])
            raise InfrastructureError(f"nothing could be listed from {outcome.source.name}: {why}")
        units = inventory.workloads()
        done = 0

        def evaluated(_: WorkloadFacts) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(Progress("evaluated", done, len(units)))

        auditor = Auditor(
            config,
            engine,
            scan_id=scan_id,
            deadline_seconds=options.deadline_seconds,
            concurrency=options.concurrency,
        )
        facts = await auditor.audit(units, evaluated)
    finally:
        if owned:
            await engine.aclose()
    now = datetime.now(UTC)
    builder = FindingBuilder(_first_seen(options.previous), now)
    workloads = [workload_result(f, builder) for f in facts]
    evaluated_policies = dict.fromkeys(e.policy for w in workloads for e in w.evaluations)
    for f in builder.findings:  # controls seen on findings complete a library we could not read
        if f.policy in evaluated_policies and f.policy not in controls:
            controls[f.policy] = f.controls
    policies = tuple(
        PolicyInfo(
            name=name, enforcement=config.policy.enforcement_for(name), controls=controls.get(name, ())
        )
        for name in sorted(evaluated_policies)
    )
    reasons = [
        f"{n.kind} not assessed ({n.reason}): {n.message}"
        for n in outcome.not_assessed
        if n.reason in _PARTIAL_REASONS
    ]
    errored = sum(1 for w in workloads for a in w.artifacts if a.status == "error")
    if errored:
        reasons.append(f"{errored} artifact verification(s) could not run (status error)")
    policy_errors = sum(1 for w in workloads if w.policy_error)
    if policy_errors:
        reasons.append(f"policies could not be evaluated on {policy_errors} workload(s)")
    reasons.extend(outcome.failures)
    info = ScanInfo(
        id=scan_id,
        started=started,
        finished=now,
        guard_version=__version__,
        config_hash=config_hash(config),
        policy_library_digest=library_digest,
        sources=(outcome.source,),
        namespaces=tuple(sorted(options.namespaces)) or None,
        shard=Shard(index=options.shard[0], count=options.shard[1]) if options.shard else None,
        not_assessed=tuple(outcome.not_assessed),
        partial=bool(reasons),
        partial_reasons=tuple(dict.fromkeys(reasons)),
        list_restarts=sum(k.restarts for k in outcome.source.listed),
        previous_scan=options.previous.scan.id if options.previous else None,
    )
    findings = sorted(
        builder.findings, key=lambda f: (f.workload_id, f.category, f.policy or "", f.rule, f.fingerprint)
    )
    return ScanResult(
        scan=info,
        policies=policies,
        workloads=tuple(workloads),
        findings=tuple(findings),
        summary=summarize(workloads, findings, inventory.pods),
    )
