"""Decisions: what every policy engine returns, whatever evaluated the Rego.

Engines produce the raw result (``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}``) and
``decide`` turns it into a ``Decision`` applying each policy's enforcement action from the config:
``deny`` (a deny violation refuses the request), ``warn`` (it is reported as a warning) or
``dryrun`` (it is only recorded, for audit). Violations from ``warn`` rules are warnings unless
the policy runs in dryrun.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from guard.errors import PolicyEngineError

Severity = Literal["critical", "high", "medium", "low", "info"]
Enforcement = Literal["deny", "warn", "dryrun"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")

T = TypeVar("T")


def frozen_instance(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` with ``fields``, which must name every field.
    What ``cls(**fields)`` builds (same fields, equality, hash and repr), without its
    ``__init__`` setting each field through ``object.__setattr__`` (a frozen dataclass's way):
    ~4x cheaper, for the violations made on every admission request. No ``__post_init__``."""
    instance: T = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


@dataclass(frozen=True)
class Violation:
    policy: str  # <bundle>.<policy>
    rule: str
    message: str
    severity: Severity
    controls: tuple[str, ...]
    enforcement: Enforcement  # what guard does about it
    source: Literal["deny", "warn"]  # which Rego rule set produced it
    artifact: str | None = None
    container: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
            "controls": list(self.controls),
            "enforcement": self.enforcement,
            "source": self.source,
            "artifact": self.artifact,
            "container": self.container,
        }


@dataclass(frozen=True)
class Decision:
    violations: tuple[Violation, ...]
    policies: tuple[str, ...]  # the policies evaluated
    # True when the engine knows the decision is the same for every input that differs from this
    # one only in the values of the volatile fields (``guard.policy.cache.VOLATILE``), strings
    # where this one's are: its template cache answered it, no rule reading those fields having
    # to be evaluated (``EmbeddedEngine``). Not part of what the decision says (not compared).
    steady: bool = field(default=False, compare=False)

    @property
    def allowed(self) -> bool:
        return not self.denials

    @property
    def denials(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.enforcement == "deny")

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.enforcement == "warn")

    @property
    def dryrun(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.enforcement == "dryrun")

    def message(self) -> str:
        """One line per denial, for the admission response (empty when allowed)."""
        return "\n".join(f"[{v.policy}/{v.rule}] {v.message}" for v in self.denials)

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "policies": list(self.policies),
            "violations": [v.to_json() for v in self.violations],
        }


def _violation(policy: str, source: Literal["deny", "warn"], raw: Any, enforcement: Enforcement) -> Violation:
    if not isinstance(raw, Mapping):
        raise PolicyEngineError(f"policy {policy}: a {source} entry must be an object, found {raw!r}")
    rule, message, severity = raw.get("rule"), raw.get("message"), raw.get("severity", "medium")
    if not isinstance(rule, str) or not isinstance(message, str):
        raise PolicyEngineError(
            f"policy {policy}: a {source} entry needs string 'rule' and 'message', found {dict(raw)!r}"
        )
    if severity not in SEVERITIES:
        raise PolicyEngineError(
            f"policy {policy} rule {rule}: severity must be one of {SEVERITIES}, found {severity!r}"
        )
    controls = raw.get("controls", [])
    if not isinstance(controls, list) or not all(isinstance(c, str) for c in controls):
        raise PolicyEngineError(
            f"policy {policy} rule {rule}: controls must be a list of strings, found {controls!r}"
        )
    if source == "warn" and enforcement == "deny":
        enforcement = "warn"
    artifact, container = raw.get("artifact"), raw.get("container")
    return frozen_instance(
        Violation,
        {
            "policy": policy,
            "rule": rule,
            "message": message,
            "severity": severity,
            "controls": tuple(controls),
            "enforcement": enforcement,
            "source": source,
            "artifact": artifact if isinstance(artifact, str) else None,
            "container": container if isinstance(container, str) else None,
        },
    )


def decide(raw: Mapping[str, Any], enforcement_for: Callable[[str], Enforcement]) -> Decision:
    """Build the decision from ``{"<bundle>.<policy>": {"deny": [...], "warn": [...]}}``."""
    violations: list[Violation] = []
    policies = sorted(raw)
    for policy in policies:
        doc = raw[policy]
        # type() first: an ABC isinstance check per policy costs more than the rest of the loop
        if type(doc) is not dict and not isinstance(doc, Mapping):
            raise PolicyEngineError(f"policy {policy}: expected an object with deny / warn, found {doc!r}")
        action: Enforcement | None = None
        for source in ("deny", "warn"):
            entries = doc.get(source, [])
            if not isinstance(entries, list):
                raise PolicyEngineError(
                    f"policy {policy}: {source} must be a set of objects, found {entries!r}"
                )
            if entries:  # most policies find nothing: no enforcement lookup for them
                action = action or enforcement_for(policy)
                violations.extend(_violation(policy, source, e, action) for e in entries)
    violations.sort(key=violation_order)
    return Decision(violations=tuple(violations), policies=tuple(policies))


_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def violation_order(v: Violation) -> tuple[bool, int, str, str, str]:
    """Where a violation stands in a decision: denials first, then by severity, policy, rule and
    message (the order is stable: equal ones keep the order their policy gave them)."""
    return (v.enforcement != "deny", _SEVERITY_RANK[v.severity], v.policy, v.rule, v.message)


def merged(decided: Sequence[Violation], more: Sequence[Violation]) -> tuple[Violation, ...]:
    """The violations of two decisions made on disjoint sets of rules (a policy's deny or warn
    set), in the order ``decide`` gives them on all the rules at once. Violations of equal order
    name one policy; ``decide`` lists a policy's deny entries before its warn entries, then keeps
    each set's own order: those of one set come from one side, in that order, which the stable
    sort keeps, and the source breaks the ties between the two sets."""
    if not more:
        return tuple(decided)
    if not decided:
        return tuple(more)
    return tuple(sorted((*decided, *more), key=lambda v: (*violation_order(v), v.source == "warn")))
