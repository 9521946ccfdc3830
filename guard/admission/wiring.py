"""The real implementations of the admission seams, built from the config.

- ``ConfigTrustRules``: the config's rules (``GuardConfig.match_rule``), with a hash of each rule's
  trust configuration for the verification cache and the ``admission.failOpenRules``.
- ``OciReferenceVerifier`` (``guard.admission.verifier``): resolves tags and verifies signatures
  with ``guard.oci.verify_oci`` (no weight is downloaded), then verifies the attached attestations
  into model facts (``guard.attest.oci``, the code ``guard facts oci://`` runs) and checks the
  attestations the rule requires.
- ``LibraryPolicyEvaluator`` (``guard.admission.policies``): builds the policy input
  (``guard.policy.input``) for each pod spec of the object and evaluates the policy library with
  the configured engine.

``build_engine(config, metrics)`` loads all of it (trust roots, policies) and returns the engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING

from guard.admission.kinds import KindTable
from guard.admission.metrics import AdmissionMetrics
from guard.admission.pipeline import AdmissionEngine
from guard.admission.policies import LibraryPolicyEvaluator, policy_artifact
from guard.admission.ports import RuleMatch
from guard.admission.recalls import RecallIndex
from guard.admission.verifier import (
    AnyOfVerifier,
    OciReferenceVerifier,
    attestation_kind,
    oci_reference,
)
from guard.config import GuardConfig, Rule
from guard.errors import ConfigError, UsageError
from guard.policy.sources import allowed_by

if TYPE_CHECKING:
    from guard.energy.usage import UsageStore
    from guard.policy.engine import PolicyEngine

__all__ = [
    "AnyOfVerifier",
    "ConfigTrustRules",
    "LibraryPolicyEvaluator",
    "OciReferenceVerifier",
    "build_engine",
    "check_admission_config",
    "oci_reference",
    "policy_artifact",
    "trust_hash",
]


# --- trust rules -------------------------------------------------------------------------------


def trust_hash(config: GuardConfig, rule: Rule) -> str:
    """A digest of everything verifying under ``rule`` depends on."""
    doc = {
        "rule": rule.model_dump(mode="json"),
        "authorities": {
            name: config.authorities[name].model_dump(mode="json")
            for name in rule.authorities
            if name in config.authorities
        },
        "referrers": config.admission.referrers.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class ConfigTrustRules:
    def __init__(self, config: GuardConfig) -> None:
        self._config = config
        self._hashes = {rule.name: trust_hash(config, rule) for rule in config.rules}
        self._fail_open = frozenset(config.admission.fail_open_rules)

        self.match = functools.lru_cache(maxsize=4096)(self._match)  # type: ignore[method-assign]

    def match(self, reference: str, namespace: str) -> RuleMatch:
        """The rule for ``reference`` in ``namespace`` (memoized: the config is immutable)."""
        return self._match(reference, namespace)

    def _match(self, reference: str, namespace: str) -> RuleMatch:
        unmatched = RuleMatch(rule=None, trust_hash="", unmatched=self._config.unmatched_artifacts)
        # a model source guard cannot verify (OCI references have no scheme) that the platform
        # allows; any other one is matched as before (a rule covering it denies: not OCI)
        allowed = self._config.policy.allowed_model_sources
        if "://" in reference and allowed_by(reference, allowed) is not None:
            return RuleMatch(rule=None, trust_hash="", unmatched="allow")
        try:
            rule = self._config.match_rule(reference, namespace)
        except UsageError:
            return unmatched  # not a reference guard can parse: the default applies
        if rule is None:
            return unmatched
        return RuleMatch(
            rule=rule.name, trust_hash=self._hashes[rule.name], fail_open=rule.name in self._fail_open
        )


# --- assembly ------------------------------------------------------------------------------------


def _usage(config: GuardConfig) -> UsageStore | None:
    """The published energy usage the policies read, when the config names a usage file (its
    module and pydantic models load only then: ~15 ms of start-up otherwise)."""
    if config.energy.usage_file is None:
        return None
    from guard.energy.usage import usage_store  # noqa: PLC0415

    return usage_store(config)


def check_admission_config(config: GuardConfig) -> None:
    """Cross-references the webhook depends on: fail-open rule names, required attestations."""
    from guard.attest.specs import PREDICATES  # noqa: PLC0415

    for i, rule in enumerate(config.rules):
        for j, required in enumerate(rule.required_attestations):
            if attestation_kind(required) is None:
                known = sorted(spec.name for spec in PREDICATES)
                raise ConfigError(
                    f"rules.{i}.requiredAttestations.{j}: unknown attestation {required!r} "
                    f"(expected one of {', '.join(known)}, or a predicate type URI)"
                )
    names = {rule.name for rule in config.rules}
    for i, name in enumerate(config.admission.fail_open_rules):
        if name not in names:
            raise ConfigError(f"admission.failOpenRules.{i}: unknown rule {name!r} (rules: {sorted(names)})")


async def build_engine(
    config: GuardConfig, metrics: AdmissionMetrics | None = None, *, policy_engine: PolicyEngine | None = None
) -> AdmissionEngine:
    """Load trust roots and policies and assemble the admission engine. Call it on the event loop
    that will serve requests (the embedded policy engine stays on the thread that made it).
    ``policy_engine``: the engine of ``config.policy`` made already (``guard serve`` makes it to
    check the config before it starts), else one is made here."""
    from guard.policy.engine import make_engine  # noqa: PLC0415

    check_admission_config(config)
    rules = ConfigTrustRules(config)
    verifier = OciReferenceVerifier(config)
    engine = policy_engine if policy_engine is not None else make_engine(config.policy)
    policy = LibraryPolicyEvaluator(config, engine, KindTable(config.admission.kinds), usage=_usage(config))
    recalls = RecallIndex(config.recalls)
    return AdmissionEngine(config.admission, rules, verifier, policy, metrics, recalls=recalls)
