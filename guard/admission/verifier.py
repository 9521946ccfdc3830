"""The registry side of admission: resolve tags and verify references with ``guard.oci.verify_oci``
(no weight is downloaded), then verify the attached attestations into model facts with the
attestations capability's own code (``guard.attest.oci``: the referrer's subject checked, its
Sigstore bundle layer read, a referrer that is not one reported as invalid, never skipped) and check
the attestations the rule requires. All of it reads the registry through one read-once view."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard.admission.ports import RuleMatch, VerifiedArtifact
from guard.config import GuardConfig, authority_verifiers
from guard.errors import (
    AttestationError,
    ConfigError,
    DeadlineExceeded,
    GuardError,
    SignatureMismatch,
    UsageError,
)
from guard.memo import keep
from guard.signing.types import SignerInfo, SigningMethod, SimpleSignature, SimpleSigningVerifier, Verifier

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from guard.oci.reference import Reference
    from guard.oci.registry import RegistryAccess
    from guard.oci.types import Descriptor, FetchedManifest, Opener, ProgressCallback, Store
    from guard.oci.verify import OciVerification


class AnyOfVerifier:
    """A Verifier that accepts a bundle one of its verifiers accepts (``require: any``).

    With ``names`` (the config authorities of ``verifiers``, in order) it remembers which one
    accepted each signer it returned: ``authority_of(signer)``."""

    def __init__(self, verifiers: Sequence[Verifier], names: Sequence[str] = ()) -> None:
        self._verifiers = tuple(verifiers)
        self._names = tuple(names)
        self._accepted: list[tuple[SignerInfo, str]] = []
        self.method: SigningMethod = verifiers[0].method

    def _accept(self, index: int, signer: SignerInfo) -> SignerInfo:
        if index < len(self._names):
            self._accepted.append((signer, self._names[index]))
        return signer

    def authority_of(self, signer: SignerInfo) -> str | None:
        """The name of the authority whose verifier returned ``signer`` (None: not known)."""
        found = next((name for s, name in reversed(self._accepted) if s is signer), None)
        return found or next((name for s, name in reversed(self._accepted) if s == signer), None)

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]:
        errors: list[GuardError] = []
        for i, verifier in enumerate(self._verifiers):
            try:
                payload, signer = verifier.verify_bundle(bundle)
                return payload, self._accept(i, signer)
            except GuardError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise SignatureMismatch(
            "no trusted authority verified the signature: " + "; ".join(str(e) for e in errors)
        ) from errors[0]

    def verify_simple_signing(self, signature: SimpleSignature) -> SignerInfo:
        """A cosign simple-signing signature one of the verifiers accepts."""
        errors: list[GuardError] = []
        for i, verifier in enumerate(self._verifiers):
            if not isinstance(verifier, SimpleSigningVerifier):
                continue
            try:
                return self._accept(i, verifier.verify_simple_signing(signature))
            except GuardError as err:
                errors.append(err)
        if not errors:
            raise SignatureMismatch("no authority of the rule can check cosign simple-signing signatures")
        if len(errors) == 1:
            raise errors[0]
        raise SignatureMismatch(
            "no trusted authority verified the cosign signature: " + "; ".join(str(e) for e in errors)
        ) from errors[0]


def _with_format(result: OciVerification) -> SignerInfo:
    """The verified signer, its details saying which signature format verified (``format``:
    oms, cosign-bundle, cosign-legacy) and whether it names the digest or its index."""
    from dataclasses import replace  # noqa: PLC0415

    details = {
        **result.signer.details,
        "format": result.format,
        "signed_via": "index" if result.via_index else "manifest",
        "signed_digest": result.signed_digest or result.digest,
    }
    return replace(result.signer, details=details)


def oci_reference(reference: str) -> str:
    """A Kubernetes image reference (``nginx``, ``host:5000/m:t``) as ``oci://host/repo[:tag][@digest]``."""
    from guard.oci.reference import parse_image_reference  # noqa: PLC0415

    return str(parse_image_reference(reference))


def registry_access(config: GuardConfig) -> RegistryAccess:
    """How the admission webhook reaches registries (``admission.registry``, the hosts the trust
    rules name, the configured mirrors)."""
    from guard.oci.registry import RegistryAccess  # noqa: PLC0415
    from guard.oci.settings import mirrors_of  # noqa: PLC0415

    registry = config.admission.registry
    return RegistryAccess(
        ca_file=registry.ca_file,
        docker_config=registry.docker_config,
        timeout=registry.timeout_seconds,
        deadline=registry.deadline_seconds,
        min_bytes_per_second=registry.min_bytes_per_second,
        redirect_hosts=registry.redirect_hosts,
        token_hosts=registry.token_hosts,
        trusted_hosts=rule_hosts(config),
        allowed_networks=registry.allowed_networks,
        mirrors=mirrors_of(config.registries),
    )


def rule_hosts(config: GuardConfig) -> tuple[str, ...]:
    """The registry hosts the trust rules name (the host part of each artifact glob, normalised;
    a glob host such as ``*.example.com`` stays a glob, ``**`` names none): a registry may
    redirect to, or name a token realm on, another registry the rules trust."""
    from guard.policy.rules import normalize_pattern  # noqa: PLC0415

    hosts: list[str] = []
    for rule in config.rules:
        for pattern in rule.artifacts:
            first, slash, _ = normalize_pattern(pattern).partition("/")
            if not slash or "**" in first or first in hosts:
                continue
            if "." in first or ":" in first or first == "localhost":
                hosts.append("registry-1.docker.io" if first == "docker.io" else first)
    return tuple(hosts)


def preconnect_targets(config: GuardConfig) -> tuple[tuple[str, bool], ...]:
    """``(endpoint, loopback)`` of the registries ``guard serve`` connects to once ready
    (``admission.registry.preconnect``): the hosts the trust rules name, globs left out (no host
    to connect to) and mirrored hosts too (never contacted), at most ``PRECONNECT_HOSTS``."""
    from guard.oci.mirror import mirror_root  # noqa: PLC0415
    from guard.oci.reference import DOCKER_HUB, DOCKER_HUB_ENDPOINT, parse_reference  # noqa: PLC0415
    from guard.oci.settings import mirrors_of  # noqa: PLC0415

    if not config.admission.registry.preconnect:
        return ()
    mirrors = mirrors_of(config.registries)
    targets: list[tuple[str, bool]] = []
    for host in rule_hosts(config):
        if len(targets) >= PRECONNECT_HOSTS:
            break
        if any(c in host for c in "*?["):
            continue
        try:
            ref = parse_reference(f"oci://{host}/guard/preconnect")
        except GuardError:
            continue  # not a host a reference can name: no admission will connect there either
        assert ref.host is not None
        names = (ref.host, DOCKER_HUB) if ref.endpoint == DOCKER_HUB_ENDPOINT else (ref.host,)
        if any(mirror_root(mirrors, name) is not None for name in names):
            continue
        if (ref.endpoint, ref.is_loopback) not in targets:
            targets.append((ref.endpoint, ref.is_loopback))
    return tuple(targets)


def attestation_kind(required: str) -> str | None:
    """The facts name (sbom, spdx, provenance, datasets) or predicate type URI a rule's
    ``required_attestations`` entry means, or None when guard does not know it. The policies read
    the same names, so no alias is accepted here that they would not understand."""
    from guard.attest.specs import PREDICATES  # noqa: PLC0415

    if "://" in required:
        return required
    return required if any(spec.name == required for spec in PREDICATES) else None


def _required_present(facts: Mapping[str, Any], required: str) -> tuple[bool, str | None]:
    wanted = attestation_kind(required) or required
    reasons = []
    for entry in facts.get("attestations") or []:
        if wanted in (entry.get("name"), entry.get("predicateType")):
            if entry.get("status") == "present":
                return True, None
            if entry.get("reason"):
                reasons.append(str(entry["reason"]))
    return False, "; ".join(reasons) or None


def _layers(store: Store, reference: str) -> tuple[str, ...]:
    """The layer digests of the (already fetched) manifest; none for an index."""
    layers = store.fetch_manifest(reference).json().get("layers")
    if not isinstance(layers, list):
        return ()
    return tuple(
        str(layer["digest"])
        for layer in layers
        if isinstance(layer, dict) and isinstance(layer.get("digest"), str)
    )


class _ReadOnce:
    """A read-only view of a store for one verification: each manifest and referrer list is
    fetched once (the signature and the attestations both read the referrers of the digest), so
    a first-seen model costs one registry round trip less. Writing through it is refused.

    It also holds the verification's budget: before each registry operation the time left is
    checked, so a verification that passed its deadline stops at its next round trip instead of
    holding a worker thread (and the single-flight slot) for as long as a registry drips."""

    def __init__(
        self,
        store: Store,
        *,
        deadline: float,
        budget: float,
        clock: Callable[[], float],
        answered: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._deadline = deadline
        self._budget = budget
        self._clock = clock
        self._answered = answered  # told after each answer the registry gave
        self._manifests: dict[str, FetchedManifest] = {}
        self._referrers: dict[str, list[Descriptor] | None] = {}

    def _check(self, what: str) -> None:
        if self._clock() >= self._deadline:
            raise DeadlineExceeded(
                f"verification passed its {self._budget:g} s budget before {what} "
                f"({self._store.describe()}); abandoned"
            )

    def describe(self) -> str:
        return self._store.describe()

    def resolve(self, reference: str) -> Descriptor:
        self._check(f"resolving {reference}")
        found = self._store.resolve(reference)
        self._answered()
        return found

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        if reference not in self._manifests:
            self._check(f"fetching manifest {reference}")
            self._manifests[reference] = self._store.fetch_manifest(reference)
            self._answered()
        return self._manifests[reference]

    def referrers(self, digest: str) -> list[Descriptor] | None:
        if digest not in self._referrers:
            self._check(f"listing the referrers of {digest}")
            self._referrers[digest] = self._store.referrers(digest)
            self._answered()
        found = self._referrers[digest]
        return None if found is None else list(found)

    def blob_exists(self, digest: str) -> bool:
        self._check(f"checking blob {digest}")
        found = self._store.blob_exists(digest)
        self._answered()
        return found

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        self._check(f"fetching blob {digest}")
        return self._store.fetch_blob(digest)

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        raise UsageError("the admission webhook never writes to a registry")

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        raise UsageError("the admission webhook never writes to a registry")

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        raise UsageError("the admission webhook never writes to a registry")


# Repositories whose store the verifier keeps. Any name a trust rule's glob matches can be
# written in a pod, so without a bound a stream of pods naming new repositories grows the webhook
# (~4 KiB a store) until it is killed; past the bound the stores are made again.
STORES_KEPT = 4096
# Registry hosts whose last answer is remembered (answered_recently); past this, the answers
# older than the window asked about are forgotten (they can no longer make a difference).
ANSWERS_KEPT = 4096
# Registry hosts guard serve connects to once ready (admission.registry.preconnect).
PRECONNECT_HOSTS = 16


class OciReferenceVerifier:
    """Resolves and verifies references in registries; thread-safe. One store per repository,
    shared by the worker threads (its registry client is thread-safe; connections are pooled per
    registry host): a repository's bearer token, and whether its registry has the Referrers API,
    are found once, not again by every thread that meets the repository."""

    def __init__(self, config: GuardConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._budget = config.admission.verification_seconds
        self._limits = config.admission.referrers.limits()
        self._rules = {rule.name: rule for rule in config.rules}
        # trust roots load here, at start-up: a bad key fails now, not on the first request
        self._verifiers: dict[str, Verifier] = authority_verifiers(config)
        self._access: RegistryAccess = registry_access(config)
        from guard.oci.client import warm_up  # noqa: PLC0415

        warm_up(self._access)  # the CA bundle is parsed now, not in the first admission's time
        self._stores: dict[str, Store] = {}
        self._stores_lock = threading.Lock()
        self._answers: dict[str, float] = {}  # registry host -> when it last answered
        self._answers_lock = threading.Lock()
        self._answer_window = config.admission.deadline_seconds  # what answered_recently asks
        self._answers_limit = ANSWERS_KEPT

    def _answered_by(self, host: str) -> Callable[[], None]:
        def mark() -> None:
            now = self._clock()
            with self._answers_lock:
                self._answers[host] = now
                if len(self._answers) > self._answers_limit:  # hosts a rule's glob lets pods name
                    window = self._answer_window
                    self._answers = {h: t for h, t in self._answers.items() if now - t <= window}
                    # all recent: let it grow, pruned again at twice the size (amortized)
                    self._answers_limit = max(ANSWERS_KEPT, 2 * len(self._answers))

        return mark

    def preconnect(self) -> list[threading.Thread]:
        """Connect to the registries of ``preconnect_targets`` in the background (a daemon
        thread per host; ``RegistryClient.preconnect``): their connections wait in the pools the
        verifier's stores share. Never fails: a host that does not answer is logged, and the
        first admission there connects itself, as without it. Returns the threads (tests join
        them)."""
        from guard.oci.registry import RegistryClient  # noqa: PLC0415

        def connect(endpoint: str, loopback: bool) -> None:
            t0 = time.perf_counter()
            try:
                status = RegistryClient(endpoint, self._access, loopback=loopback).preconnect()
            except GuardError as err:
                log.info("pre-connecting to registry %s: %s", endpoint, err)
                return
            # not an answer for answered_recently: that speaks of admissions' own requests
            took = (time.perf_counter() - t0) * 1000
            log.debug("pre-connected to registry %s in %.1f ms (GET /v2/: %d)", endpoint, took, status)

        threads = [
            threading.Thread(target=connect, args=target, name=f"guard-preconnect-{i}", daemon=True)
            for i, target in enumerate(preconnect_targets(self._config))
        ]
        for thread in threads:
            thread.start()
        return threads

    def answered_recently(self, reference: str, seconds: float) -> bool:
        """True when the registry of ``reference`` answered a request of guard's within the last
        ``seconds``: it is reachable, so a verification that ran out of time there was slowed by
        what it had to read (or a registry that drips), which a fail-open rule does not cover.
        ``seconds``: at most ``admission.deadlineSeconds`` (older answers may be forgotten)."""
        from guard.admission.pipeline import registry_of  # noqa: PLC0415

        when = self._answers.get(registry_of(reference))
        return when is not None and self._clock() - when <= seconds

    def _store(self, oci_ref: str) -> tuple[Store, Any]:
        from guard.oci.reference import parse_reference  # noqa: PLC0415
        from guard.oci.store import open_store  # noqa: PLC0415

        parsed = parse_reference(oci_ref)
        key = parsed.base()
        with self._stores_lock:
            store = self._stores.get(key)
        if store is None:
            made = open_store(parsed, self._access)  # outside the lock: reads the docker config
            with self._stores_lock:
                store = self._stores.get(key) or keep(self._stores, key, made, STORES_KEPT)
        return store, parsed

    def resolve(self, reference: str) -> str:
        from guard.admission.pipeline import registry_of  # noqa: PLC0415

        store, parsed = self._store(oci_reference(reference))
        digest = store.resolve(parsed.reference).digest
        self._answered_by(registry_of(reference))()
        return digest

    def verify(self, reference: str, digest: str, rule: RuleMatch) -> VerifiedArtifact:
        from guard.oci.verify import verify_oci  # noqa: PLC0415

        config_rule = self._rules[rule.rule] if rule.rule is not None else None
        if config_rule is None:
            raise ConfigError(f"rule {rule.rule!r} is not in the config")
        verifiers = [self._verifiers[name] for name in config_rule.authorities]
        shared, parsed = self._store(oci_reference(reference))
        from guard.admission.pipeline import registry_of  # noqa: PLC0415

        store = _ReadOnce(
            shared,
            deadline=self._clock() + self._budget,
            budget=self._budget,
            clock=self._clock,
            answered=self._answered_by(registry_of(reference)),
        )
        pinned = parsed.with_digest(digest)
        # 1. the signature(s): one of the authorities (any), or each of them (all); only
        #    signature predicates count (an attestation signed by the same key never does)
        names = config_rule.authorities
        groups = (
            [[i] for i in range(len(names))] if config_rule.require == "all" else [list(range(len(names)))]
        )
        checks = [AnyOfVerifier([verifiers[i] for i in group], [names[i] for i in group]) for group in groups]
        results = [
            verify_oci(
                pinned,
                check,
                store,
                limits=self._limits,
                extra_predicates=config_rule.signature_predicates,
            )
            for check in checks
        ]
        # the authorities whose signatures verified (policies read them: tenancy.signers), not
        # every authority of a ``require: any`` rule
        verified_by = (
            check.authority_of(result.signer) for check, result in zip(checks, results, strict=True)
        )
        authorities = tuple(dict.fromkeys(name for name in verified_by if name is not None))
        # which format verified, and how it binds, travel with the signer (policy input, facts)
        signers = [_with_format(result) for result in results]
        # 2. attestations attached to the digest, verified into facts (the attestations
        #    capability's own reading of referrers: subject checked, bundle layer, none skipped)
        facts = self._facts(store, pinned, AnyOfVerifier(verifiers), results[0])
        # 3. what the rule requires
        for required in config_rule.required_attestations:
            present, why = _required_present(facts, required)
            if not present:
                raise AttestationError(
                    f"rule {config_rule.name!r} requires a valid {required} attestation attached to "
                    f"{digest}; " + (why or "none is attached")
                )
        return VerifiedArtifact(
            reference=reference,
            # the sha256 of the manifest verified, however the reference names it (``@sha512:``):
            # what recalls and signatures name
            digest=results[0].digest,
            signers=tuple(signers),
            facts=facts,
            layers=_layers(store, digest),
            signatures=tuple(result.signature_digest for result in results),
            authorities=authorities,
        )

    def _facts(
        self, store: Store, pinned: Reference, verifier: Verifier, signature: OciVerification
    ) -> Mapping[str, Any]:
        from guard.attest.collect import SignatureOutcome, collect_facts  # noqa: PLC0415
        from guard.attest.oci import oci_attestation_inputs, oci_packaging, oci_subject  # noqa: PLC0415

        target = oci_subject(pinned, store)  # the manifest and referrers come from the read-once view
        inputs, rejected = oci_attestation_inputs(target, self._limits)
        outcome = SignatureOutcome(
            signature.signer,
            "present",
            None,
            f"referrer {signature.signature_digest}",
            covers_manifest=signature.mode == "manifest-digest",
        )
        facts = collect_facts(target.subject, verifier, inputs, signature=outcome, rejected=rejected)
        # the packer's records (modctl Modelfile, KitOps Kitfile) from the manifest already read;
        # trusted only when the signature covered the manifest digest (no extra round trip)
        packed = oci_packaging(target, signed=signature.mode == "manifest-digest")
        return facts.model_copy(update={"packaging": packed}).to_json()
