"""Prometheus metrics of the admission engine, on a registry passed in (no import-time globals)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from guard.admission.cache import CacheEvent

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AdmissionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._latency_children: dict[tuple[str, str], Histogram] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "guard_admission_request_duration_seconds",
            "Time to decide an admission request, by kind and decision.",
            ("kind", "decision"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = PolicyDecisions(
            "guard_admission_policy_decisions",
            "Policy results per admission request, by policy and result (pass, deny, warn, dryrun).",
            ("policy", "result"),
        )
        r.register(self.decisions)
        self.in_flight = Gauge(
            "guard_admission_requests_in_flight", "Admission requests being decided.", registry=r
        )
        self.cache = Counter(
            "guard_verification_cache",
            "Verification cache lookups by result (hit, negative_hit, miss, coalesced).",
            ("cache", "result"),
            registry=r,
        )
        self.registry_errors = Counter(
            "guard_registry_errors",
            "Registry operations that failed, by operation and error type.",
            ("operation", "error"),
            registry=r,
        )
        self.registry_seconds = Histogram(
            "guard_registry_operation_duration_seconds",
            "Time of registry operations (resolve, verify), by operation.",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.deadline_exceeded = Counter(
            "guard_admission_deadline_exceeded",
            "Admission work cut off by guard's deadline (denied unless failing open), by stage "
            "(verification, policy).",
            ("stage",),
            registry=r,
        )
        self.malformed = Counter(
            "guard_admission_malformed_requests",
            "Requests refused before a decision (malformed, too large, busy with large ones), by reason.",
            ("reason",),
            registry=r,
        )

    def count_results(self, policies: tuple[str, ...], others: tuple[tuple[str, str], ...] = ()) -> None:
        """Count a request's results: every policy of ``policies`` passed but those ``others``
        names (``(policy, result)``); one addition for the requests of a template."""
        self.decisions.count_results(policies, others)

    def observe_request(self, kind: str, decision: str, seconds: float) -> None:
        key = (kind, decision)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.request_seconds.labels(kind=kind, decision=decision)
        child.observe(seconds)

    def cache_event(self, cache: str) -> _CacheRecorder:
        return _CacheRecorder(self.cache, cache)


class _CacheRecorder:
    def __init__(self, counter: Counter, cache: str) -> None:
        self._children = {
            event: counter.labels(cache=cache, result=event)
            for event in ("hit", "negative_hit", "miss", "coalesced")
        }

    def __call__(self, event: CacheEvent) -> None:
        self._children[event].inc()


_BULK_KEPT = 4096  # combinations of results counted at once; the others one by one


class PolicyDecisions:
    """A labelled counter counted in bulk: a request's ~30 policy results are plain integer
    additions, where a ``Counter`` child takes a lock and a method call for each. Collected as a
    ``Counter`` of the same name, help, labels and ``_created`` samples would be."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._counts: dict[tuple[str, ...], int] = {}
        self._created: dict[tuple[str, ...], float] = {}
        # requests by their results: (policies, the (policy, result) of those that did not pass)
        self._bulk: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int] = {}

    def count_results(self, policies: tuple[str, ...], others: tuple[tuple[str, str], ...] = ()) -> None:
        """``count((p, dict(others).get(p, "pass")) for p in policies)`` as one addition."""
        key = (policies, others)
        found = self._bulk.get(key)
        if found is None and len(self._bulk) >= _BULK_KEPT:  # many combinations: one by one
            results = dict(others)
            self.count((policy, results.get(policy, "pass")) for policy in policies)
        elif found is None:
            now, results = time.time(), dict(others)
            for policy in policies:
                self._created.setdefault((policy, results.get(policy, "pass")), now)
            self._bulk[key] = 1
        else:
            self._bulk[key] = found + 1

    def count(self, keys: Iterable[tuple[str, ...]]) -> None:
        counts = self._counts
        for key in keys:
            found = counts.get(key)
            if found is None:
                self._created[key] = time.time()
                counts[key] = 1
            else:
                counts[key] = found + 1

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labels)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        use_created: Any = getattr(_prometheus_metrics, "_use_created", True)
        counts, created = dict(self._counts), dict(self._created)  # copies: a scrape runs on another thread
        for (policies, others), requests in dict(self._bulk).items():
            results = dict(others)
            for policy in policies:
                label = (policy, results.get(policy, "pass"))
                counts[label] = counts.get(label, 0) + requests
        for key, value in counts.items():
            family.add_metric(key, float(value), created=created.get(key) if use_created else None)
        yield family
