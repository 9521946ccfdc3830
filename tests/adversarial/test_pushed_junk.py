"""Pushed junk x every place guard reads it (issue 9): never allowed, never a 5xx, never past the
deadline, never a traceback, and the CLI exits 1 (a verification failure), not 3.

One row per (junk kind, scenario) from ``guard.testing.junk.JUNK``; one column per place:
``guard verify oci://``, ``guard facts oci://`` and the admission webhook (``guard serve``'s app
over TLS, with the real OciReferenceVerifier and policies) under a *fail-open* rule, so that junk
taken for "registry unreachable" would show as an allow. Scenarios: the junk alone (the model is
unsigned, or signed without the provenance its rule requires: must be denied) and the junk
beside a good signature (the junk is newest: the model must still verify and be allowed).
Against Debian's docker-registry. Add a kind to ``JUNK`` and every place tests it.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.cli import run
from guard.config import parse_config
from guard.errors import RegistryError
from guard.oci.push import push_model
from guard.oci.referrers import attach, load_attachment
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.signing import KeySigner, sign_model
from guard.signing.keys import generate_keypair
from guard.testing.admission import admission_review, pod
from guard.testing.junk import JUNK, JunkKind
from webhook.server import WebhookServer, build_app
from webhook.tls import ReloadingCertificate

pytestmark = [pytest.mark.registry, pytest.mark.slow]

TIMEOUT_SECONDS = 4.0
MARGIN_SECONDS = 1.0  # a correctness bound on "answered before the API server gave up", not a perf goal


@dataclass(frozen=True)
class Case:
    junk: JunkKind
    beside_good_signature: bool

    @property
    def id(self) -> str:
        return f"{self.junk.name} ({'beside a good signature' if self.beside_good_signature else 'alone'})"

    @property
    def rule(self) -> str:
        return "adv-att" if self.junk.aims == "attestation" else "adv-sig"

    @property
    def signed(self) -> bool:
        return self.beside_good_signature or self.junk.aims == "attestation"

    @property
    def verifies(self) -> bool:
        """What ``guard verify`` must say: the signature is good (the junk is ignored)."""
        return self.signed

    @property
    def allowed(self) -> bool:
        """What admission must decide: only a good signature beside signature junk is allowed."""
        return self.beside_good_signature


CASES = [Case(j, False) for j in JUNK] + [Case(j, True) for j in JUNK if j.aims == "signature"]
# Junk that docker-registry 2.8 validates on PUT and refuses ("HTTP 400: MANIFEST_INVALID": a layer
# whose mediaType, digest and size are not a descriptor's): nothing is stored, so the places have
# nothing to read; the refusal itself is asserted (test_refused_by_docker_registry), and the same
# manifest, served as a registry that stores anything would, is read by guard in
# tests/oci/test_adversarial_referrers.py. A refused case the registry starts accepting fails.
REFUSED_BY_REGISTRY = {"signature: layer not a descriptor", "attestation: layer not a descriptor"}
STORED = [c for c in CASES if c.junk.name not in REFUSED_BY_REGISTRY]
REFUSED = [c for c in CASES if c.junk.name in REFUSED_BY_REGISTRY]

# Cases whose fix the lead is still making (guard/oci/verify.py, referrers.py, attest/oci.py,
# admission/pipeline.py, verifier.py): they flip to passing when it lands.
PENDING: dict[tuple[str, str], str] = {}
# Seen, not marked (timing-dependent, so a strict xfail would be flaky): on a machine with load
# average ~39 the "300 junk attestations" row hit the 3 s deadline and, the deadline counting as
# "registry unreachable", its fail-open rule ALLOWED the model without the provenance its rule
# requires ("allowed UNVERIFIED ... did not finish within guard's 3 s deadline"); unloaded, it
# is denied in time. Issue 9 items 4 and 9 (the lead's): bound the work, reserve the time.


@dataclass(frozen=True)
class Published:
    host: str
    public_key: Path
    references: dict[str, str]  # case id -> host/repo:v1
    refused: dict[str, str]  # case id -> the registry's refusal of the junk on push

    def reference(self, case: Case) -> str:
        assert case.id not in self.refused, f"docker-registry refused this junk: {self.refused[case.id]}"
        return self.references[case.id]


def _repo(case: Case) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in case.id.lower())
    return f"{case.rule}/{'-'.join(filter(None, slug.split('-')))[:80]}"


@pytest.fixture(scope="module")
def published(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Published:
    work = tmp_path_factory.mktemp("junk")
    keys = generate_keypair(work / "keys")
    signer = KeySigner.from_file(keys.private_key)
    access = RegistryAccess()
    references = {}
    refused: dict[str, str] = {}
    for i, case in enumerate(CASES):
        model = work / f"m{i}"
        model.mkdir()
        # a distinct model per case: the webhook caches verdicts by digest
        (model / "model.safetensors").write_bytes(os.urandom(64) + case.id.encode())
        (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
        store = RegistryStore.open(registry.host, _repo(case), access, loopback=True)
        pushed = push_model(store, model, "v1").descriptor
        if case.signed:
            signature = work / f"m{i}.sig"
            sign_model(model, signer, signature_path=signature)
            attach(store, pushed, load_attachment("signature", signature))
        try:
            case.junk.push(store, pushed)
        except RegistryError as err:  # this registry validates that shape on push
            refused[case.id] = str(err)[-200:]
        references[case.id] = f"{registry.host}/{_repo(case)}:v1"
    return Published(registry.host, keys.public_key, references, refused)


def _config(published: Published) -> dict[str, Any]:
    host = published.host
    return {
        "authorities": {"ci": {"kind": "key", "key": str(published.public_key)}},
        "rules": [
            {"name": "adv-sig", "artifacts": [f"{host}/adv-sig/**"], "authorities": ["ci"]},
            {
                "name": "adv-att",
                "artifacts": [f"{host}/adv-att/**"],
                "authorities": ["ci"],
                "requiredAttestations": ["provenance"],
            },
        ],
        "policy": {
            "requireSbom": False,
            "mutableTags": "warn",
            "enforcement": {"provenance": "warn", "tenancy": "warn", "supply_chain": "warn"},
        },
        "admission": {
            "timeoutSeconds": TIMEOUT_SECONDS,
            "deadlineMarginSeconds": 1.0,
            # fail-open everywhere: junk mistaken for an unreachable registry would be allowed
            "failOpenRules": ["adv-sig", "adv-att"],
        },
    }


@pytest.fixture(scope="module")
def webhook(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls = tmp_path_factory.mktemp("tls")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tls / "tls.pem"))
    cert.private_key_pem.write_to_path(str(tls / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(tls / "tls.crt"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    certificate = ReloadingCertificate(tls / "tls.crt", tls / "tls.key")
    server = WebhookServer(build_app(parse_config(_config(published)), certificate), certificate).start()
    client = httpx.Client(base_url=server.url, verify=context, timeout=TIMEOUT_SECONDS * 3)
    yield client
    client.close()
    server.stop()


def _pending(case: Case, place: str) -> list[Any]:
    reason = PENDING.get((case.junk.name, place)) or PENDING.get((case.id, place))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def _params(place: str) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=_pending(c, place)) for c in STORED]


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "RecursionError" not in err, err[-2000:]


@pytest.mark.parametrize("case", _params("verify"))
def test_guard_verify(case: Case, published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"oci://{published.reference(case)}"
    code = run(["verify", ref, "--key", str(published.public_key)])
    err = capsys.readouterr().err
    _no_traceback(err)
    assert code == (0 if case.verifies else 1), err[-2000:]


@pytest.mark.parametrize("case", _params("facts"))
def test_guard_facts(case: Case, published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"oci://{published.reference(case)}"
    require = "provenance" if case.junk.aims == "attestation" else "signature"
    code = run(["facts", ref, "--key", str(published.public_key), "--require", require, "--json"])
    captured = capsys.readouterr()
    _no_traceback(captured.err)
    assert code == (0 if case.allowed else 1), captured.err[-2000:]
    if case.junk.aims == "attestation":
        facts = json.loads(captured.out)
        statuses = [a.get("status") for a in facts.get("attestations", [])]
        assert "invalid" in statuses, facts.get("attestations")  # listed invalid, never present


@pytest.mark.parametrize("case", _params("webhook"))
def test_admission_webhook(case: Case, published: Published, webhook: httpx.Client) -> None:
    review = admission_review(pod(published.reference(case)))
    started = time.monotonic()
    response = webhook.post("/validate", json=review)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()["response"]
    message = (answer.get("status") or {}).get("message", "")
    assert answer["allowed"] is case.allowed, (message, answer.get("warnings"))
    assert not any("fails open" in w for w in answer.get("warnings") or []), answer.get("warnings")
    assert "Traceback" not in message and "unexpectedly" not in message, message
    assert elapsed < TIMEOUT_SECONDS + MARGIN_SECONDS, f"answered after {elapsed:.2f} s"


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.id} refused by docker-registry") for c in REFUSED])
def test_refused_by_docker_registry(
    case: Case, published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = published.refused.get(case.id)
    assert refusal is not None, "docker-registry stored this junk: test it in every place (move it to STORED)"
    assert "HTTP 400: MANIFEST_INVALID" in refusal, refusal
    # the refused push left the model as it was: guard reads it as without the junk
    code = run(["verify", f"oci://{published.references[case.id]}", "--key", str(published.public_key)])
    err = capsys.readouterr().err
    _no_traceback(err)
    assert code == (0 if case.verifies else 1), err[-2000:]
