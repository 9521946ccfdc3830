"""Start-up warm-up: what the first admission of a process would otherwise pay for, done before
the webhook says it is ready (``webhook.server`` runs it after building the engine).

Measured on the cold path of ``benchmarks/webhook_load.py`` (a model not seen before: resolve,
verify, facts, policies): without it, the first request of a process took 70-98 ms against
16-18 ms for the next ones; most of the difference is modules the request path imports lazily
(the verification and attestation code, the policy input builder, jsonschema for predicates)
and the policy engine's first evaluation. ``tests/admission/test_warm_up.py`` checks that after
``warm_up`` a cold admission imports no module of guard's any more.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

# Imported lazily by the request path (guard.admission.verifier and what it calls).
REQUEST_MODULES = (
    "guard.oci.reference",
    "guard.oci.store",
    "guard.oci.verify",
    "guard.attest.oci",
    "guard.attest.collect",
    "guard.signing.verify_key",
    "guard.signing.cosign_key",
    "guard.policy.input",
    "guard.policy.rules",
    "cryptography.hazmat.backends.openssl.backend",  # cryptography's ec.ECDSA(), on its first use
)


async def warm_up(*seams: object) -> None:
    """Import the request path's modules, build the attestation validators, and run each seam's
    own ``warm_up()`` when it has one (the policy evaluator: one evaluation of a sample)."""
    from guard.attest import cyclonedx_schema, specs  # noqa: PLC0415

    for name in REQUEST_MODULES:
        importlib.import_module(name)
    specs.warm_up()
    cyclonedx_schema.warm_up()
    for seam in seams:
        method: Callable[[], Awaitable[None]] | None = getattr(seam, "warm_up", None)
        if method is not None:
            await method()
