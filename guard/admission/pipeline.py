"""The admission pipeline: one request in, one outcome out, under a deadline.

1. Skip what carries no new artifact: other operations, exempt namespaces, subresources (but
   ``ephemeralcontainers``), an UPDATE of an object already being deleted (the garbage
   collector removing finalizers must never be blocked).
2. Extract every reference, from the one table of kinds; more distinct references than
   ``max_references`` deny before any registry call.
3. Match each reference to its trust rule; apply the default to those no rule covers.
4. Resolve tags to digests and verify signatures and attestations, all references at once, in a
   thread pool, through the single-flight caches (keyed by registry, digest and trust config),
   within the deadline less the policy budget. Work still queued when its time is up is dropped;
   a verification past its budget stops at its next registry round trip.
5. Evaluate policies with the verified facts (violations are data), on every CREATE and UPDATE:
   an UPDATE whose references did not change is served from the verification cache, but its
   pod spec (an added privileged ephemeral container, a dropped sandbox) is always judged.
6. Decide: any deny -> denied, with every reason; errors and deadlines deny (fail closed) unless
   the reference's rule fails open, then they warn.

Any unexpected error denies too: this module never lets a request through by accident.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, cast

from guard.admission import verdicts as verdict_of
from guard.admission.cache import SingleFlightCache
from guard.admission.kinds import KindTable
from guard.admission.metrics import AdmissionMetrics
from guard.admission.outcome import AdmissionOutcome, ArtifactVerdict, DecisionKind
from guard.admission.ports import (
    PolicyEvaluator,
    PolicyResult,
    ReferenceVerifier,
    RuleMatch,
    TrustRules,
    VerifiedArtifact,
)
from guard.admission.recalls import RecallIndex
from guard.admission.references import ArtifactReference, extract_references, template_digest
from guard.admission.review import AdmissionRequest
from guard.admission.settings import AdmissionSettings, KindSpec
from guard.admission.spellings import Spellings, check_spellings, with_deprecated
from guard.errors import (
    AnswerTooLargeError,
    DeadlineExceeded,
    GuardError,
    InfrastructureError,
    NotFoundError,
    RefusedTargetError,
    RegistryAnswerError,
    RegistryAuthError,
    RegistryTlsError,
    VerificationError,
)
from guard.memo import keep

log = logging.getLogger("guard.admission")

T = TypeVar("T")

_VERIFIED_SUBRESOURCES = frozenset({"ephemeralcontainers"})
# what an object's references are: its kind, the references, the spellings of its annotations
_Extracted = tuple[KindSpec, tuple[ArtifactReference, ...], Spellings]
_REFERENCES_KEPT = 1024  # templates whose references are kept (all dropped when full)


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()


class AdmissionEngine:
    """Decides admission requests. Make one per process, inside its event loop's lifetime, and
    ``await aclose()`` at shutdown."""

    def __init__(
        self,
        settings: AdmissionSettings,
        rules: TrustRules,
        verifier: ReferenceVerifier,
        policy: PolicyEvaluator,
        metrics: AdmissionMetrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        recalls: RecallIndex | None = None,
    ) -> None:
        self.settings = settings
        self.kinds = KindTable(settings.kinds)
        self.metrics = metrics if metrics is not None else AdmissionMetrics()
        self._rules = rules
        self._verifier = verifier
        self._policy = policy
        self._clock = clock
        self._recalls = recalls if recalls else None
        self._exempt = frozenset(settings.exempt_namespaces)
        self._annotation_keys = with_deprecated(settings.annotations)  # old spellings read too
        # an object's references and spellings, by its kind (the entry keeps the KindSpec) and
        # its template_digest: the pods of a template have the same
        self._references: dict[tuple[int, bytes], _Extracted] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_concurrent_verifications, thread_name_prefix="guard-verify"
        )
        cache = settings.cache
        self._verdicts: SingleFlightCache[tuple[str, str, str], VerifiedArtifact] = SingleFlightCache(
            ttl=cache.ttl_seconds,
            negative_ttl=cache.negative_ttl_seconds,
            max_entries=cache.max_entries,
            clock=clock,
            on_event=self.metrics.cache_event("verification"),
            stale_after=settings.deadline_seconds,
        )
        self._digests: SingleFlightCache[str, str] = SingleFlightCache(
            ttl=cache.tag_ttl_seconds,
            negative_ttl=0,
            max_entries=cache.max_entries,
            clock=clock,
            on_event=self.metrics.cache_event("tag"),
            stale_after=settings.deadline_seconds,
        )

    async def warm_up(self) -> None:
        """Load now what the first admission of the process would otherwise pay for (see
        ``guard.admission.warmup``); the webhook calls it before it says ready."""
        from guard.admission.warmup import warm_up  # noqa: PLC0415

        await warm_up(self._verifier, self._policy)

    def preconnect(self) -> list[threading.Thread]:
        """Start connecting, in the background, to the registries the trust rules name (the
        verifier's ``preconnect``; ``admission.registry.preconnect``): the webhook does it as it
        says ready, and does not wait. Returns the threads started (none for a verifier that has
        no registry to connect to)."""
        method: Callable[[], list[threading.Thread]] | None = getattr(self._verifier, "preconnect", None)
        return method() if method is not None else []

    async def aclose(self) -> None:
        close = getattr(self._policy, "aclose", None)
        if close is not None:
            await close()
        await self._verdicts.aclose()
        await self._digests.aclose()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- entry point ------------------------------------------------------------------------

    async def review(self, request: AdmissionRequest, *, large: bool = False) -> AdmissionOutcome:
        """Decide ``request``. Never raises for a request: errors become a deny outcome.
        ``large``: walk the object for references on a worker thread (a big object must not hold
        the event loop while other requests wait)."""
        started = self._clock()
        decision_id = _decision_id()
        self.metrics.in_flight.inc()
        try:
            outcome = await self._decide(request, decision_id, large=large)
        except Exception as err:  # fail closed on anything unforeseen, and say so
            log.exception(
                "admission failed unexpectedly; denying",
                extra={"fields": {"uid": request.uid, "decisionId": decision_id}},
            )
            outcome = self._outcome(
                request,
                decision_id,
                "denied",
                message=f"guard failed while deciding ({type(err).__name__}); the request is denied "
                f"because guard fails closed. Retry; if it persists, give the decision id to your "
                f"platform team",
            )
        finally:
            self.metrics.in_flight.dec()
        elapsed = self._clock() - started
        self.metrics.observe_request(outcome.kind, outcome.decision, elapsed)
        try:
            self._log(request, outcome, elapsed)
        except Exception:  # a log line must never change the answer
            log.exception("could not log the decision %s", outcome.decision_id)
        return outcome

    async def evaluate_object(
        self, request: AdmissionRequest, *, deadline_seconds: float | None = None
    ) -> AdmissionOutcome:
        """Verify and evaluate ``request.object`` exactly as a CREATE would be, without the steps
        that skip a request (operation, exempt namespaces, subresources, objects being deleted): for
        audits of running objects (``guard scan``, operation ``AUDIT``). The outcome says what
        admission would decide; nothing is enforced. Never raises for an object."""
        decision_id = _decision_id()
        try:
            spec = self.kinds.lookup(request.kind.group, request.kind.kind)
            if spec is None:
                return self._unknown_kind(request, decision_id)
            deadline = _Deadline(deadline_seconds or self.settings.deadline_seconds, self._clock)
            template = template_digest(request.object)
            refs, spelling = self._references_of(request.object, spec, template)
            if spelling.conflicts:
                return self._outcome(request, decision_id, "denied", message="; ".join(spelling.conflicts))
            if len(refs) > self.settings.max_references:
                return self._too_many_references(request, decision_id, len(refs))
            verdicts = await self._verify_all(refs, request.namespace or "", deadline)
            policy, policy_error = await self._evaluate(request, verdicts, deadline, template)
            return self._decision(request, decision_id, verdicts, policy, policy_error, *spelling.warnings)
        except Exception as err:  # an audit records the failure; it never stops the scan
            log.exception("evaluating %s/%s failed unexpectedly", request.namespace, request.name)
            return self._outcome(
                request,
                decision_id,
                "denied",
                message=f"guard failed while evaluating ({type(err).__name__})",
            )

    async def resolve(self, reference: str) -> str:
        """The digest ``reference`` (an image reference, no scheme) names now, through the tag
        cache (single-flight): for audits comparing it with what runs. Raises like the verifier."""
        if "@" in reference:
            return reference.rsplit("@", 1)[1]
        return await self._digests.get(
            reference, lambda: self._call("resolve", self._verifier.resolve, reference)
        )

    # -- the steps --------------------------------------------------------------------------

    async def _decide(
        self, request: AdmissionRequest, decision_id: str, *, large: bool = False
    ) -> AdmissionOutcome:
        deadline = _Deadline(self.settings.deadline_seconds, self._clock)
        namespace = request.namespace or ""
        # 1. what carries nothing new
        if request.operation not in ("CREATE", "UPDATE"):
            return self._outcome(request, decision_id, "skipped")
        if namespace in self._exempt:
            return self._outcome(
                request, decision_id, "exempt", notes={"exempt": f"namespace {namespace} is exempt"}
            )
        if request.sub_resource and request.sub_resource not in _VERIFIED_SUBRESOURCES:
            return self._outcome(request, decision_id, "skipped")
        spec = self.kinds.lookup(request.kind.group, request.kind.kind)
        if spec is None:
            return self._unknown_kind(request, decision_id)
        if request.object is None:
            return self._outcome(
                request,
                decision_id,
                "denied",
                message=f"the {request.operation} request carries no object to check",
            )
        if request.operation == "UPDATE" and _being_deleted(request.old_object):
            return self._outcome(
                request, decision_id, "skipped", notes={"skipped": "the object is being deleted"}
            )
        # 2. references
        template = None  # a large object is not serialized on the event loop for a key
        if large:
            refs = await asyncio.to_thread(extract_references, request.object, spec, self._annotation_keys)
            spelling = check_spellings(request.object, spec, self.settings.annotations)
        else:
            template = template_digest(request.object)
            refs, spelling = self._references_of(request.object, spec, template)
        if spelling.conflicts:  # two answers to "which models does this run": deny, never pick one
            return self._outcome(request, decision_id, "denied", message="; ".join(spelling.conflicts))
        if len(refs) > self.settings.max_references:
            return self._too_many_references(request, decision_id, len(refs))
        # 3.-4. rules, resolution, verification, all at once (an UPDATE whose references did not
        #    change is answered from the cache; its policies still run below)
        verdicts = await self._verify_all(refs, namespace, deadline)
        # 5. policies
        policy, policy_error = await self._evaluate(request, verdicts, deadline, template)
        # 6. decision
        return self._decision(request, decision_id, verdicts, policy, policy_error, *spelling.warnings)

    def _references_of(
        self, obj: Mapping[str, Any] | None, spec: KindSpec, template: bytes | None
    ) -> tuple[tuple[ArtifactReference, ...], Spellings]:
        """``extract_references`` and ``check_spellings`` of ``obj``, made once for the objects
        of one ``template_digest`` (``template``; None: made for this one): the pods of one
        template share their references, immutable objects."""
        key = (id(spec), template) if template is not None else None
        found = self._references.get(key) if key is not None else None
        if found is not None and found[0] is spec:
            return found[1], found[2]
        refs = extract_references(obj, spec, self._annotation_keys)
        spelling = check_spellings(obj, spec, self.settings.annotations)
        if key is not None:
            keep(self._references, key, (spec, refs, spelling), _REFERENCES_KEPT)
        return refs, spelling

    def _too_many_references(
        self, request: AdmissionRequest, decision_id: str, found: int
    ) -> AdmissionOutcome:
        return self._outcome(
            request,
            decision_id,
            "denied",
            message=f"the object carries {found} distinct artifact references; guard verifies at most "
            f"{self.settings.max_references} per object (admission.maxReferences), so it is denied "
            f"unverified. Split the workload, or raise the limit in guard's config",
        )

    def _unknown_kind(self, request: AdmissionRequest, decision_id: str) -> AdmissionOutcome:
        gk = f"{request.kind.kind}.{request.kind.group}" if request.kind.group else request.kind.kind
        if self.settings.unknown_kinds == "allow":
            return self._outcome(
                request,
                decision_id,
                "warned",
                warnings=(f"guard does not know where {gk} carries artifacts; it was not checked",),
            )
        return self._outcome(
            request,
            decision_id,
            "denied",
            message=f"guard does not know where kind {gk} carries model or image references, so it "
            f"cannot check it; add it to admission.kinds in guard's config (or remove it from the "
            f"webhook's rules)",
        )

    async def _verify_all(
        self, refs: Sequence[ArtifactReference], namespace: str, deadline: _Deadline
    ) -> tuple[ArtifactVerdict, ...]:
        matches = [self._rules.match(ref.reference, namespace) for ref in refs]
        # what the caches answer is answered here; only the rest waits for the registry (a task
        # each: ~10x the cost of a cache hit, for every reference of every request)
        now = [self._verify_now(ref, match) for ref, match in zip(refs, matches, strict=True)]
        tasks = {
            i: asyncio.ensure_future(self._verify_one(ref, match, n if isinstance(n, str) else None))
            for i, (ref, match, n) in enumerate(zip(refs, matches, now, strict=True))
            if not isinstance(n, ArtifactVerdict)
        }
        if tasks:  # the policy budget stays for step 5, whatever verification does
            budget = deadline.remaining() - self.settings.policy_budget
            await asyncio.wait(tasks.values(), timeout=max(budget, 0.0))
        found: list[ArtifactVerdict] = []
        for i, (ref, match) in enumerate(zip(refs, matches, strict=True)):
            answered = now[i]
            if isinstance(answered, ArtifactVerdict):
                found.append(answered)
                continue
            task = tasks[i]
            if task.done():
                found.append(task.result())
                continue
            task.cancel()
            self.metrics.deadline_exceeded.labels(stage="verification").inc()
            reason = (
                f"its verification did not finish within guard's {self.settings.verification_seconds:g} s "
                f"verification deadline (is the registry slow or unreachable?)"
            )
            found.append(verdict_of.unverifiable(ref, self._fail_open_if_unreachable(ref, match), reason))
        return tuple(found)

    def _fail_open_if_unreachable(self, ref: ArtifactReference, match: RuleMatch) -> RuleMatch:
        """A fail-open rule covers a registry guard cannot reach. One that answered within the
        deadline is reachable: time that ran out there went on what a pusher attached (or a
        drip), so the reference fails closed whatever its rule says."""
        if match.fail_open and self._verifier.answered_recently(
            ref.reference, self.settings.deadline_seconds
        ):
            return dataclasses.replace(match, fail_open=False)
        return match

    async def _verify_one(
        self, ref: ArtifactReference, match: RuleMatch, digest: str | None = None
    ) -> ArtifactVerdict:
        """``digest``: what ``_verify_now`` found the reference names (resolved once)."""
        try:
            return await self._verify_checked(ref, match, digest)
        except Exception as err:
            return self._verdict_of_error(ref, match, err)

    def _verify_now(self, ref: ArtifactReference, match: RuleMatch) -> ArtifactVerdict | str | None:
        """The verdict when no registry call is needed (no rule, not OCI, or its digest and
        verdict cached: the same verdict ``_verify_one`` gives); else the digest when known (pinned,
        or its tag's resolution cached), else None."""
        try:
            if match.rule is None or not ref.is_oci:
                return self._verdict_without_registry(ref, match)
            digest = ref.reference.rsplit("@", 1)[1] if ref.pinned else self._digests.cached(ref.reference)
            if digest is None:
                return None
            self._check_manifest_recall(digest)
            artifact = self._verdicts.cached(self._verdict_key(ref, digest, match))
            if artifact is None:
                return digest
            return self._verified(ref, match, digest, artifact)
        except Exception as err:
            return self._verdict_of_error(ref, match, err)

    def _verdict_of_error(self, ref: ArtifactReference, match: RuleMatch, err: Exception) -> ArtifactVerdict:
        """The verdict of a verification that raised ``err``. A fail-open rule covers only a
        registry that could not answer: every other case is judged with ``closed``."""
        closed = dataclasses.replace(match, fail_open=False)
        if isinstance(err, NotFoundError):
            return verdict_of.not_found(ref, match, err)
        if isinstance(err, RegistryAuthError):
            # it answered: refused credentials (expired, rotated, none) are no outage
            return verdict_of.unauthorized(ref, closed, err)
        if isinstance(err, VerificationError):
            return verdict_of.failed(ref, match, err)
        if isinstance(err, (RefusedTargetError, AnswerTooLargeError)):
            # refused on purpose (a redirect to cloud metadata, an answer over its cap): whoever
            # controls the registry or its content chose it, so a fail-open rule does not cover it
            return verdict_of.unverifiable(ref, closed, str(err), "the registry's answer was refused")
        if isinstance(err, (RegistryTlsError, RegistryAnswerError)):
            # it answered: with a certificate guard does not trust, or a 4xx that is no outage
            advice = (
                "trust the registry's CA (admission.registry.caFile)"
                if isinstance(err, RegistryTlsError)
                else "the registry answered, so no fail-open rule covers it"
            )
            return verdict_of.unverifiable(ref, closed, str(err), advice)
        if isinstance(err, DeadlineExceeded):  # fail open only if the registry gave no answer at all
            return verdict_of.unverifiable(
                ref, self._fail_open_if_unreachable(ref, match), str(err) or type(err).__name__
            )
        if isinstance(err, InfrastructureError):  # the registry could not answer: may fail open
            return verdict_of.unverifiable(ref, match, str(err) or type(err).__name__)
        # Not an unreachable registry (a bug, or content guard cannot make sense of, which an
        # attacker can push): a fail-open rule does not cover it, so it denies.
        if not isinstance(err, GuardError):
            log.error("verifying %s failed unexpectedly", ref.reference, exc_info=err)
        return verdict_of.unverifiable(ref, closed, str(err) or type(err).__name__)

    @staticmethod
    def _verdict_without_registry(ref: ArtifactReference, match: RuleMatch) -> ArtifactVerdict:
        if match.rule is None:
            return verdict_of.unmatched(ref, match)
        return verdict_of.not_oci(ref, match)

    def _check_manifest_recall(self, digest: str) -> None:
        # recalls are checked before the cache and on every cached verdict: they act at once
        recalled = self._recalls.manifest(digest) if self._recalls else None
        if recalled is not None:
            raise recalled.error(digest)

    @staticmethod
    def _verdict_key(ref: ArtifactReference, digest: str, match: RuleMatch) -> tuple[str, str, str]:
        # keyed by repository too: signatures and attestations are attached per repository, and
        # the same digest behind a stuck registry must not hold up (or answer for) the same
        # digest through a healthy one
        return (repository_of(ref.reference), digest, match.trust_hash)

    def _verified(
        self, ref: ArtifactReference, match: RuleMatch, digest: str, artifact: VerifiedArtifact
    ) -> ArtifactVerdict:
        recalled = self._recalls.artifact(artifact) if self._recalls else None
        if recalled is not None:
            raise recalled.error(digest)
        return ArtifactVerdict(
            ref=ref,
            match=match,
            status="verified",
            effect="pass",
            digest=digest,
            resolved_from_tag=not ref.pinned,
            artifact=artifact,
        )

    async def _verify_checked(
        self, ref: ArtifactReference, match: RuleMatch, digest: str | None = None
    ) -> ArtifactVerdict:
        if match.rule is None or not ref.is_oci:
            return self._verdict_without_registry(ref, match)
        if digest is None and ref.pinned:
            digest = ref.reference.rsplit("@", 1)[1]
        elif digest is None:
            digest = await self._digests.get(
                ref.reference, lambda: self._call("resolve", self._verifier.resolve, ref.reference)
            )
        self._check_manifest_recall(digest)
        artifact = await self._verdicts.get(
            self._verdict_key(ref, digest, match),
            lambda: self._call("verify", self._verifier.verify, ref.reference, digest, match),
            keep_error=lambda err: isinstance(err, VerificationError),
        )
        return self._verified(ref, match, digest, artifact)

    async def _call(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking registry call in the pool, with its metrics. A call still queued when
        the verification time is up (the pool busy with slow registries) is dropped unrun, so a
        backlog drains at once instead of delaying every later request."""
        loop = asyncio.get_running_loop()
        started = self._clock()
        end = started + self.settings.verification_seconds

        def run() -> T:
            if self._clock() >= end:
                raise DeadlineExceeded(
                    f"{operation} waited {self.settings.verification_seconds:g} s for a free worker "
                    f"(every worker busy with slow registries); dropped unrun"
                )
            return fn(*args)

        try:
            return await loop.run_in_executor(self._pool, run)
        except Exception as err:
            if not isinstance(err, VerificationError):
                self.metrics.registry_errors.labels(operation=operation, error=type(err).__name__).inc()
            raise
        finally:
            self.metrics.registry_seconds.labels(operation=operation).observe(self._clock() - started)

    async def _evaluate(
        self,
        request: AdmissionRequest,
        verdicts: Sequence[ArtifactVerdict],
        deadline: _Deadline,
        template: bytes | None = None,
    ) -> tuple[PolicyResult, str | None]:
        remaining = deadline.remaining()
        if remaining <= 0:
            self.metrics.deadline_exceeded.labels(stage="policy").inc()
            return (
                PolicyResult(),
                f"policies were not evaluated: guard's {deadline.seconds:g} s deadline passed",
            )
        try:
            result = await _within(self._policy.evaluate(request, verdicts, template=template), remaining)
        except TimeoutError:
            self.metrics.deadline_exceeded.labels(stage="policy").inc()
            return PolicyResult(), (
                f"policy evaluation did not finish within guard's {deadline.seconds:g} s deadline"
            )
        except InfrastructureError as err:
            return PolicyResult(), f"the policy engine failed: {err}"
        except GuardError as err:
            return PolicyResult(), f"policy evaluation failed: {err}"
        return result, None

    def _decision(
        self,
        request: AdmissionRequest,
        decision_id: str,
        verdicts: tuple[ArtifactVerdict, ...],
        policy: PolicyResult,
        policy_error: str | None,
        *warnings: str,
    ) -> AdmissionOutcome:
        actions: dict[str, set[str]] = {}
        for violation in policy.violations:  # one pass: this runs for every request
            actions.setdefault(violation.policy, set()).add(violation.action)
        self.metrics.count_results(
            policy.policies, tuple((name, _result_of(found)) for name, found in actions.items())
        )
        denied = (
            policy_error is not None
            or any(v.effect == "deny" for v in verdicts)
            or any(v.action == "deny" for v in policy.violations)
        )
        if denied:  # nothing was "allowed UNVERIFIED": say what the fail-open rule did not change
            verdicts = tuple(verdict_of.fail_open_overruled(v) for v in verdicts)
        warned = (
            bool(warnings)
            or any(v.effect == "warn" or v.resolved_from_tag for v in verdicts)
            or any(v.action == "warn" for v in policy.violations)
        )
        decision: DecisionKind = "denied" if denied else "warned" if warned else "allowed"
        if policy_error is not None:
            policy_error += "; denied because guard fails closed"
        return self._outcome(
            request,
            decision_id,
            decision,
            message=policy_error or "",
            artifacts=verdicts,
            violations=policy.violations,
            policies=policy.policies,
            warnings=tuple(warnings),
        )

    # -- helpers ----------------------------------------------------------------------------

    def _outcome(
        self,
        request: AdmissionRequest,
        decision_id: str,
        decision: DecisionKind,
        **fields: Any,
    ) -> AdmissionOutcome:
        return AdmissionOutcome(
            uid=request.uid,
            decision_id=decision_id,
            decision=decision,
            kind=request.kind.kind,
            dry_run=request.dry_run,
            **fields,
        )

    def _log(self, request: AdmissionRequest, outcome: AdmissionOutcome, elapsed: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "uid": request.uid,
            "decisionId": outcome.decision_id,
            "decision": outcome.decision,
            "kind": outcome.kind,
            "namespace": request.namespace,
            "name": request.name or _generate_name(request.object),
            "operation": request.operation,
            "user": request.user_info.username,
            "dryRun": request.dry_run,
            "durationMs": round(elapsed * 1000, 3),
            "artifacts": [
                {"reference": v.ref.reference, "digest": v.digest, "status": v.status, "effect": v.effect}
                for v in outcome.artifacts
            ],
        }
        reasons = [v.message for v in outcome.artifacts if v.effect != "pass" and v.message]
        reasons += [f"[{v.policy}] {v.message}" for v in outcome.violations]
        if outcome.message:
            reasons.insert(0, outcome.message)
        if reasons:
            fields["reasons"] = reasons
        # what log.info does, less its walk up the stack for the caller's file and line (the
        # line prints neither): one record a request
        record = log.makeRecord(
            log.name,
            logging.INFO,
            __file__,
            0,
            "admission %s",
            (outcome.decision,),
            None,
            "_log",
            {"fields": fields},
        )
        log.handle(record)


def _result_of(actions: set[str]) -> str:
    """A policy's result in the metrics: its strongest action."""
    for action in ("deny", "warn", "dryrun"):
        if action in actions:
            return action
    return "pass"


def _being_deleted(obj: Mapping[str, Any] | None) -> bool:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    return isinstance(metadata, Mapping) and bool(metadata.get("deletionTimestamp"))


def _decision_id() -> str:
    """What ``uuid.uuid4().hex`` gives (122 random bits, version 4 and the RFC 9562 variant set),
    without the ``UUID`` object: a third of its cost, once a request."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def registry_of(reference: str) -> str:
    """The registry host of an image reference (normalised as the trust rules see it)."""
    return repository_of(reference).split("/", 1)[0]


_REPOSITORIES: dict[str, str] = {}  # repository_of's answers: every request asks for its references
_REPOSITORIES_KEPT = 4096
_REPOSITORY_KEY_CHARS = 1024  # a longer reference is parsed every time (memory)


def repository_of(reference: str) -> str:
    """``registry/repository`` of an image reference, normalised (no tag or digest)."""
    found = _REPOSITORIES.get(reference)
    if found is not None:
        return found
    from guard.policy.rules import parse_reference  # noqa: PLC0415

    try:
        parsed = parse_reference(reference)
    except GuardError:
        repository = reference.split("@", 1)[0]
    else:
        repository = f"{parsed.registry}/{parsed.repository}"
    if len(reference) > _REPOSITORY_KEY_CHARS:
        return repository
    return keep(_REPOSITORIES, reference, repository, _REPOSITORIES_KEPT)


def _generate_name(obj: Mapping[str, Any] | None) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = metadata.get("generateName") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else None


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable`` under a ``seconds`` timeout (``TimeoutError`` when it runs out). A coroutine
    that finishes without waiting on anything (the embedded engine's evaluation: no await
    suspends it) is run without the timer: no timeout could have stopped it, the loop never
    getting control back, and setting and cancelling one costs ~10 us a request. One that waits
    (an OPA server) goes on under a timeout ending when this one would have."""
    if not asyncio.iscoroutine(awaitable):
        async with asyncio.timeout(seconds):
            return await awaitable
    end = asyncio.get_running_loop().time() + seconds
    try:
        waiting = awaitable.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    async with asyncio.timeout_at(end):
        return await _Resumed(awaitable, waiting)


class _Resumed(Generic[T]):
    """Awaits a coroutine already started and suspended on ``waiting`` (what it yielded to the
    task): what ``await`` would have done from its first step on, cancellation included."""

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, T], waiting: Any) -> None:
        self._coroutine = coroutine
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, waiting = self._coroutine, self._waiting
        self._waiting = None
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as err:  # a cancellation (the timeout's) goes on into it
                try:
                    waiting = coroutine.throw(err)
                except StopIteration as done:
                    return cast(T, done.value)
                continue
            try:
                waiting = coroutine.send(sent)
            except StopIteration as done:
                return cast(T, done.value)
