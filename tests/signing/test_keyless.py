"""Keyless (Sigstore) signing and verification, offline, against guard.testing.sigstore.

The trust root is built per test module with real cryptography (Fulcio-style CA with SCTs, a
transparency log with Merkle proofs, checkpoints and SETs); sigstore-python's Verifier does the
checking. Signing goes through sigstore-python's real Fulcio / Rekor clients over HTTP to the test
instance served on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import VerificationError as SigstoreVerificationError

from guard.cli import run
from guard.errors import (
    BundleFormatError,
    ConfigError,
    IdentityMismatch,
    IntegrityError,
    SignatureMismatch,
    TransparencyLogError,
    UntrustedCertificate,
    UsageError,
)
from guard.signing import hash_model, sign_model, sign_statement, statement_for_manifest, verify_model
from guard.signing.sign_sigstore import SigstoreSigner
from guard.signing.types import SigningMethod
from guard.signing.verify_sigstore import SigstoreVerifier, certificate_issuer
from guard.testing.sigstore import (
    DEFAULT_ISSUER,
    TestSigstore,
    tamper_checkpoint,
    tamper_inclusion_proof,
    tamper_payload,
    tamper_signed_entry_timestamp,
)

ALICE = "alice@example.com"
WORKFLOW = "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> TestSigstore:
    return TestSigstore.create(tmp_path_factory.mktemp("sigstore"))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    (model / "tokenizer").mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return model


@pytest.fixture
def statement(model_dir: Path) -> dict[str, Any]:
    return statement_for_manifest(hash_model(model_dir))


@pytest.fixture
def bundle(sigstore: TestSigstore, statement: dict[str, Any]) -> dict[str, Any]:
    """A keyless OMS bundle signed by ALICE through guard's sign_statement template."""
    signed: dict[str, Any] = json.loads(sign_statement(statement, _Signer(sigstore, ALICE)))
    return signed


class _Signer:
    """TestSigstore as a guard Signer for a chosen identity / issuer."""

    method: SigningMethod = "keyless"

    def __init__(self, sigstore: TestSigstore, identity: str, issuer: str | None = None) -> None:
        self.sigstore, self.identity, self.issuer = sigstore, identity, issuer

    def sign_payload(self, payload: bytes) -> dict[str, Any]:
        return self.sigstore.sign_payload(payload, identity=self.identity, issuer=self.issuer)


def _verifier(sigstore: TestSigstore, **kwargs: Any) -> SigstoreVerifier:
    options: dict[str, Any] = {"issuer": DEFAULT_ISSUER, "identity": ALICE} | kwargs
    return SigstoreVerifier(trust_config=sigstore.trust_config_path, offline=True, **options)


def _write(tmp_path: Path, bundle: dict[str, Any], name: str = "model.sig") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    return path


# --- accepted ---------------------------------------------------------------------------------


def test_valid_keyless_bundle_verifies_model(
    sigstore: TestSigstore, model_dir: Path, bundle: dict[str, Any], tmp_path: Path
) -> None:
    verified = verify_model(model_dir, _write(tmp_path, bundle), _verifier(sigstore))
    assert verified.signer.method == "keyless"
    assert verified.signer.identity == ALICE
    assert verified.signer.issuer == DEFAULT_ISSUER
    assert verified.signer.details["log_index"].isdigit()
    assert {r.name for r in verified.manifest.resources} == {
        "config.json",
        "weights.bin",
        "tokenizer/vocab.txt",
    }


def test_identity_regex_must_match_the_whole_san(sigstore: TestSigstore, bundle: dict[str, Any]) -> None:
    payload, signer = _verifier(sigstore, identity=None, identity_regex=r".*@example\.com").verify_bundle(
        bundle
    )
    assert signer.identity == ALICE
    assert json.loads(payload)["predicateType"] == "https://model_signing/signature/v1.0"
    with pytest.raises(IdentityMismatch, match="expected matching /alice/") as err:
        _verifier(sigstore, identity=None, identity_regex="alice").verify_bundle(bundle)
    assert err.value.found == ALICE


def test_workflow_uri_identity_and_its_details(sigstore: TestSigstore, statement: dict[str, Any]) -> None:
    github = "https://token.actions.githubusercontent.com"
    extensions = {
        "1.3.6.1.4.1.57264.1.12": "https://github.com/acme/models",
        "1.3.6.1.4.1.57264.1.14": "refs/heads/main",
        "1.3.6.1.4.1.57264.1.11": "github-hosted",
    }
    payload = json.dumps(statement).encode()
    signed = sigstore.sign_payload(payload, identity=WORKFLOW, issuer=github, extensions=extensions)
    regex = r"https://github\.com/acme/models/\.github/workflows/release\.yml@refs/heads/.+"
    _, signer = _verifier(sigstore, issuer=github, identity=None, identity_regex=regex).verify_bundle(signed)
    assert (signer.identity, signer.issuer) == (WORKFLOW, github)
    assert signer.details["source_repository_uri"] == "https://github.com/acme/models"
    assert signer.details["source_repository_ref"] == "refs/heads/main"
    assert signer.details["runner_environment"] == "github-hosted"


def test_trusted_root_file_alone_is_enough_to_verify(
    sigstore: TestSigstore, bundle: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(sigstore.trusted_root()))
    _, signer = SigstoreVerifier(
        DEFAULT_ISSUER, identity=ALICE, trust_config=root, offline=True
    ).verify_bundle(bundle)
    assert signer.identity == ALICE


def test_offline_verification_opens_no_connection(
    sigstore: TestSigstore, bundle: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline verification tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    _, signer = _verifier(sigstore).verify_bundle(bundle)
    assert signer.identity == ALICE


# --- refused, with the reason -----------------------------------------------------------------


def test_wrong_identity_shows_expected_and_found(sigstore: TestSigstore, bundle: dict[str, Any]) -> None:
    with pytest.raises(IdentityMismatch) as err:
        _verifier(sigstore, identity="mallory@example.com").verify_bundle(bundle)
    assert "expected mallory@example.com" in str(err.value)
    assert f"found {ALICE}" in str(err.value)
    assert (err.value.expected, err.value.found) == ("mallory@example.com", ALICE)


def test_wrong_issuer_shows_expected_and_found(sigstore: TestSigstore, bundle: dict[str, Any]) -> None:
    with pytest.raises(IdentityMismatch) as err:
        _verifier(sigstore, issuer="https://accounts.google.com").verify_bundle(bundle)
    message = str(err.value)
    assert "OIDC issuer mismatch" in message
    assert "expected 'https://accounts.google.com'" in message
    assert f"found '{DEFAULT_ISSUER}'" in message


@pytest.mark.parametrize(
    ("tamper", "error", "reason"),
    [
        (tamper_payload, SignatureMismatch, "statement was modified after signing"),
        (tamper_inclusion_proof, TransparencyLogError, "Merkle inclusion proof"),
        (tamper_signed_entry_timestamp, TransparencyLogError, "signed entry timestamp"),
        (tamper_checkpoint, TransparencyLogError, "checkpoint"),
    ],
)
def test_tampered_bundle_is_refused_with_the_reason(
    sigstore: TestSigstore,
    bundle: dict[str, Any],
    tamper: Callable[[dict[str, Any]], dict[str, Any]],
    error: type[Exception],
    reason: str,
) -> None:
    _verifier(sigstore).verify_bundle(bundle)  # the untampered one is fine
    with pytest.raises(error, match=reason):
        _verifier(sigstore).verify_bundle(tamper(bundle))


def test_certificate_from_another_ca_is_untrusted(
    sigstore: TestSigstore, statement: dict[str, Any], tmp_path: Path
) -> None:
    rogue = TestSigstore.create(tmp_path / "rogue")
    signed = json.loads(sign_statement(statement, _Signer(rogue, ALICE)))
    with pytest.raises(UntrustedCertificate, match="does not chain to a Fulcio CA of the trust root"):
        _verifier(sigstore).verify_bundle(signed)


def test_signature_logged_after_the_certificate_expired_is_untrusted(
    sigstore: TestSigstore, statement: dict[str, Any]
) -> None:
    late = sigstore.sign_payload(
        json.dumps(statement).encode(), identity=ALICE, logged_after=timedelta(hours=1)
    )
    with pytest.raises(
        UntrustedCertificate, match="not valid when the transparency log recorded the signature"
    ):
        _verifier(sigstore).verify_bundle(late)


def test_certificate_with_two_different_issuers_is_refused(
    sigstore: TestSigstore, bundle: dict[str, Any]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sigstore.issue_certificate(key.public_key(), ALICE, legacy_issuer="https://accounts.google.com")
    with pytest.raises(IdentityMismatch, match="two different OIDC issuers"):
        certificate_issuer(cert)


def test_public_good_trust_root_offline_refuses_a_private_certificate(
    bundle: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default trust root (public good, cached copy, no network) does not trust test certs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline verification tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    verifier = SigstoreVerifier(DEFAULT_ISSUER, identity=ALICE, offline=True)
    with pytest.raises(UntrustedCertificate, match="does not chain to a Fulcio CA of the trust root"):
        verifier.verify_bundle(bundle)


def test_key_signed_bundle_names_the_missing_field(sigstore: TestSigstore, bundle: dict[str, Any]) -> None:
    material = bundle["verificationMaterial"]
    key_bundle = bundle | {"verificationMaterial": {"publicKey": {"hint": "abc"}, "tlogEntries": []}}
    with pytest.raises(BundleFormatError, match="made with a key; verify it with --key") as err:
        _verifier(sigstore).verify_bundle(key_bundle)
    assert err.value.field == "verificationMaterial.certificate"
    no_entry = bundle | {"verificationMaterial": material | {"tlogEntries": []}}
    with pytest.raises(BundleFormatError, match="exactly one transparency log entry, found 0") as err:
        _verifier(sigstore).verify_bundle(no_entry)
    assert err.value.field == "verificationMaterial.tlogEntries"


# --- options and trust config -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"identity": ALICE, "identity_regex": ".*"}, "exactly one of --identity"),
        ({"identity": None}, "exactly one of --identity"),
        ({"identity": None, "identity_regex": "("}, "not a valid regular expression"),
        ({"issuer": ""}, "needs --issuer"),
    ],
)
def test_bad_verifier_options_are_usage_errors(
    sigstore: TestSigstore, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        _verifier(sigstore, **options)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "expected JSON, found something that is not"),
        ('{"mediaType": "application/json"}', "expected application/vnd.dev.sigstore.clienttrustconfig"),
        (
            '{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": []}',
            "certificateAuthorities: Field required; ctlogs: Field required",
        ),
        (
            '{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [], '
            '"certificateAuthorities": [], "ctlogs": []}',
            r"certificateAuthorities \(Fulcio CA certificates\): none usable",
        ),
    ],
)
def test_bad_trust_config_is_a_config_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "trust.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        SigstoreVerifier(DEFAULT_ISSUER, identity=ALICE, trust_config=path)


def test_signing_refuses_a_bare_trusted_root(sigstore: TestSigstore, tmp_path: Path) -> None:
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(sigstore.trusted_root()))
    with pytest.raises(ConfigError, match="signing needs a ClientTrustConfig"):
        SigstoreSigner(identity_token="x", trust_config=root)


# --- signing through sigstore-python's Fulcio and Rekor clients ----------------------------------


@pytest.fixture
def served(sigstore: TestSigstore) -> Iterator[TestSigstore]:
    with sigstore.serve():
        yield sigstore


def test_sign_with_identity_token_then_verify(served: TestSigstore, model_dir: Path) -> None:
    signer = SigstoreSigner(
        identity_token=served.identity_token(ALICE), trust_config=served.trust_config_path
    )
    signed = sign_model(model_dir, signer)
    assert signed.signature_path == model_dir / "model.sig"
    bundle = json.loads(signed.bundle_bytes)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {
        "kind": "dsse",
        "version": "0.0.1",
    }
    verified = verify_model(model_dir, model_dir / "model.sig", _verifier(served))
    assert verified.signer.identity == ALICE
    (model_dir / "weights.bin").write_bytes(b"swapped")
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        verify_model(model_dir, model_dir / "model.sig", _verifier(served))


def test_sign_with_ambient_github_actions_credentials(
    served: TestSigstore, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in served.github_actions_env(WORKFLOW).items():
        monkeypatch.setenv(name, value)
    sign_model(model_dir, SigstoreSigner(trust_config=served.trust_config_path))
    verifier = _verifier(served, identity=WORKFLOW)
    assert verify_model(model_dir, model_dir / "model.sig", verifier).signer.identity == WORKFLOW


def test_no_token_in_ci_is_a_usage_error_saying_how(
    sigstore: TestSigstore, statement: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever CI runs this test, no ambient credential is found (the GitHub path is tested above).
    monkeypatch.setattr("guard.signing.sign_sigstore.detect_credential", lambda: None)
    monkeypatch.setenv("CI", "true")
    signer = SigstoreSigner(trust_config=sigstore.trust_config_path)
    with pytest.raises(UsageError, match="pass --identity-token") as err:
        sign_statement(statement, signer)
    assert "id-token: write" in str(err.value)


def test_ambient_credentials_without_permission_say_so(
    sigstore: TestSigstore, statement: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # a job without `permissions: id-token: write`
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    with pytest.raises(UsageError, match="id-token: write"):
        sign_statement(statement, SigstoreSigner(trust_config=sigstore.trust_config_path))


def test_expired_or_foreign_token_is_a_usage_error(sigstore: TestSigstore, statement: dict[str, Any]) -> None:
    expired = sigstore.identity_token(ALICE, lifetime=timedelta(seconds=-60))
    with pytest.raises(UsageError, match="identity token from --identity-token cannot be used"):
        sign_statement(
            statement, SigstoreSigner(identity_token=expired, trust_config=sigstore.trust_config_path)
        )
    other_audience = sigstore.identity_token(ALICE, audience="not-sigstore")
    with pytest.raises(UsageError, match="audience 'sigstore'"):
        sign_statement(
            statement, SigstoreSigner(identity_token=other_audience, trust_config=sigstore.trust_config_path)
        )


def test_unreachable_instance_is_an_infrastructure_error(
    sigstore: TestSigstore, statement: dict[str, Any]
) -> None:
    from guard.errors import InfrastructureError

    # Not served: the trust config points at 127.0.0.1:9, where nothing listens.
    signer = SigstoreSigner(
        identity_token=sigstore.identity_token(ALICE), trust_config=sigstore.trust_config_path
    )
    with pytest.raises(InfrastructureError, match="Sigstore instance"):
        sign_statement(statement, signer)


# --- interoperability with the OMS reference implementation (model_signing) ------------------------


def test_model_signing_verifies_guard_keyless_signature(
    sigstore: TestSigstore, model_dir: Path, tmp_path: Path
) -> None:
    from model_signing import verifying

    signature = tmp_path / "model.sig"
    sign_model(model_dir, _Signer(sigstore, ALICE), signature_path=signature)
    config = verifying.Config()
    config.use_sigstore_verifier(
        identity=ALICE, oidc_issuer=DEFAULT_ISSUER, trust_config=sigstore.trust_config_path
    )
    config.verify(model_dir, signature)
    # model_signing lets sigstore-python's own error through
    with pytest.raises(SigstoreVerificationError, match=r"SANs do not match mallory@example\.com"):
        wrong = verifying.Config()
        wrong.use_sigstore_verifier(
            identity="mallory@example.com",
            oidc_issuer=DEFAULT_ISSUER,
            trust_config=sigstore.trust_config_path,
        ).verify(model_dir, signature)


def test_guard_verifies_model_signing_keyless_signature(
    served: TestSigstore, model_dir: Path, tmp_path: Path
) -> None:
    from model_signing import signing

    signature = tmp_path / "model.sig"
    config = signing.Config()
    config.use_sigstore_signer(
        identity_token=served.identity_token(ALICE), trust_config=served.trust_config_path
    )
    config.sign(model_dir, signature)
    verified = verify_model(model_dir, signature, _verifier(served))
    assert verified.signer.identity == ALICE


# --- through the CLI ---------------------------------------------------------------------------------


def _cli_verify(model_dir: Path, signature: Path, sigstore: TestSigstore, *extra: str) -> list[str]:
    return [
        "verify",
        str(model_dir),
        "--signature",
        str(signature),
        "--trust-config",
        str(sigstore.trust_config_path),
        "--offline",
        *extra,
    ]


def test_cli_verify_keyless(
    sigstore: TestSigstore,
    model_dir: Path,
    bundle: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signature = _write(tmp_path, bundle)
    args = _cli_verify(model_dir, signature, sigstore, "--identity", ALICE, "--issuer", DEFAULT_ISSUER)
    assert run(args) == 0
    out = capsys.readouterr().out
    assert f"signed by: {ALICE} [keyless], issuer {DEFAULT_ISSUER}" in out
    regex = _cli_verify(
        model_dir, signature, sigstore, "--identity-regex", r"alice@.+", "--issuer", DEFAULT_ISSUER
    )
    assert run(regex) == 0


@pytest.mark.parametrize(
    ("options", "tamper", "reason"),
    [
        (
            ["--identity", "bob@example.com", "--issuer", DEFAULT_ISSUER],
            None,
            f"expected bob@example.com, found {ALICE}",
        ),
        (["--identity", ALICE, "--issuer", "https://accounts.google.com"], None, "OIDC issuer mismatch"),
        (
            ["--identity", ALICE, "--issuer", DEFAULT_ISSUER],
            tamper_payload,
            "statement was modified after signing",
        ),
        (["--identity", ALICE, "--issuer", DEFAULT_ISSUER], tamper_inclusion_proof, "Merkle inclusion proof"),
        (
            ["--identity", ALICE, "--issuer", DEFAULT_ISSUER],
            tamper_signed_entry_timestamp,
            "signed entry timestamp",
        ),
        (["--identity", ALICE, "--issuer", DEFAULT_ISSUER], tamper_checkpoint, "checkpoint"),
    ],
)
def test_cli_verify_keyless_failures_exit_1_with_the_reason(
    sigstore: TestSigstore,
    model_dir: Path,
    bundle: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None,
    reason: str,
) -> None:
    signature = _write(tmp_path, tamper(bundle) if tamper else bundle)
    assert run(_cli_verify(model_dir, signature, sigstore, *options)) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "verification failed" in err
    assert reason in err


def test_cli_verify_keyless_usage_errors_exit_2(
    sigstore: TestSigstore, model_dir: Path, bundle: dict[str, Any], tmp_path: Path
) -> None:
    signature = _write(tmp_path, bundle)
    assert run(_cli_verify(model_dir, signature, sigstore, "--identity", ALICE)) == 2  # no --issuer
    bad_regex = _cli_verify(
        model_dir, signature, sigstore, "--identity-regex", "(", "--issuer", DEFAULT_ISSUER
    )
    assert run(bad_regex) == 2
    missing = ["verify", str(model_dir), "--signature", str(signature), "--identity", ALICE]
    missing += ["--issuer", DEFAULT_ISSUER, "--trust-config", str(tmp_path / "nope.json")]
    assert run(missing) == 2


def test_cli_sign_keyless_then_verify(served: TestSigstore, model_dir: Path) -> None:
    token = served.identity_token(ALICE)
    sign = ["sign", str(model_dir), "--keyless", "--identity-token", token]
    assert run([*sign, "--trust-config", str(served.trust_config_path)]) == 0
    signature = model_dir / "model.sig"
    assert (
        run(_cli_verify(model_dir, signature, served, "--identity", ALICE, "--issuer", DEFAULT_ISSUER)) == 0
    )


def test_token_problems_are_usage_errors_before_any_network(
    statement: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # no --trust-config: the public-good trust root would need TUF; a token problem must be
    # reported (exit 2) without it, and a malformed --identity-token before the model is hashed
    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("the trust root was fetched before the token was checked")

    monkeypatch.setattr("guard.signing.sign_sigstore.public_good_trust_config", no_network)
    with pytest.raises(UsageError, match="identity token from --identity-token cannot be used"):
        SigstoreSigner(identity_token="not-a-jwt")
    monkeypatch.setattr("guard.signing.sign_sigstore.detect_credential", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(UsageError, match="pass --identity-token"):
        sign_statement(statement, SigstoreSigner())
