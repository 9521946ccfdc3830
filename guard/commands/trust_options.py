"""Reusable CLI trust options: how a command is told to sign, or whom to trust when verifying.

``guard sign`` / ``guard verify`` use them, and so do ``guard attest``, ``guard facts`` and
``guard verify oci://``: declare parameters with the ``Annotated`` aliases below and pass the
values to ``build_signer(...)`` / ``build_verifier(...)``. Backends are imported lazily.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from guard.errors import UsageError

if TYPE_CHECKING:
    from guard.signing.types import Signer, Verifier

log = logging.getLogger(__name__)

_SIGN = "Signing method (exactly one)"
_TRUST = "Trust (exactly one of --key, --certificate-roots, --identity/--identity-regex + --issuer)"

# --- signing ---------------------------------------------------------------------------------
SignKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="ECDSA private key (PEM). Alone: sign with the bare key; with "
        "--certificate: the certificate's key.",
        rich_help_panel=_SIGN,
        show_default=False,
    ),
]
CertificateOption = Annotated[
    Path | None,
    typer.Option(
        "--certificate",
        help="Signing (leaf) certificate, PEM; needs --key and --certificate-chain.",
        rich_help_panel=_SIGN,
        show_default=False,
    ),
]
CertificateChainOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--certificate-chain",
        help="PEM file with the intermediate (and root) certificates; repeatable.",
        rich_help_panel=_SIGN,
        show_default=False,
    ),
]
KeylessOption = Annotated[
    bool,
    typer.Option(
        "--keyless",
        help="Sign with Sigstore: a short-lived certificate for your OIDC identity "
        "(the CI runner's ambient credentials or --identity-token), logged in Rekor.",
        rich_help_panel=_SIGN,
    ),
]
IdentityTokenOption = Annotated[
    str | None,
    typer.Option(
        "--identity-token",
        envvar="SIGSTORE_ID_TOKEN",
        help="OIDC identity token for --keyless "
        "(default: detect ambient CI credentials, else browser flow). Prefer the env var.",
        rich_help_panel=_SIGN,
        show_default=False,
    ),
]
SignTrustConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-config",
        envvar="GUARD_SIGSTORE_TRUST_CONFIG",
        help="Keyless: a Sigstore ClientTrustConfig JSON for a private instance "
        "(default: the public-good instance).",
        rich_help_panel=_SIGN,
        show_default=False,
    ),
]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Name of the environment variable holding the "
        "private key's passphrase (never pass a passphrase on the command line).",
        show_default=False,
    ),
]
PassphraseStdinOption = Annotated[
    bool,
    typer.Option(
        "--passphrase-stdin", help="Read the private key's passphrase from the first line of stdin."
    ),
]

# --- verifying -------------------------------------------------------------------------------
VerifyKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="ECDSA public key (PEM) the model must be signed with.",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
CertificateRootsOption = Annotated[
    Path | None,
    typer.Option(
        "--certificate-roots",
        help="PEM file of trusted root certificates; the signing certificate must chain to one of them.",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
IdentityOption = Annotated[
    str | None,
    typer.Option(
        "--identity",
        help="Keyless: the exact signer identity (certificate SAN: email or URI).",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
IdentityRegexOption = Annotated[
    str | None,
    typer.Option(
        "--identity-regex",
        help="Keyless: a regular expression the whole signer identity must match.",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
IssuerOption = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        help="Keyless: the OIDC issuer URL the identity must come from.",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
TrustConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--trust-config",
        envvar="GUARD_SIGSTORE_TRUST_CONFIG",
        help="Keyless: a Sigstore ClientTrustConfig (or TrustedRoot for "
        "verifying) JSON for a private Sigstore instance (default: the public-good instance).",
        rich_help_panel=_TRUST,
        show_default=False,
    ),
]
OfflineOption = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Keyless: verify without network (use the cached / given trust root).",
        rich_help_panel=_TRUST,
    ),
]


def read_passphrase(env_var: str | None, from_stdin: bool) -> bytes | None:
    """The passphrase from the named environment variable or stdin's first line (or None)."""
    if env_var and from_stdin:
        raise UsageError("give the passphrase one way: --passphrase-env VAR or --passphrase-stdin, not both")
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise UsageError(f"--passphrase-env {env_var}: the environment variable {env_var} is not set")
        if not value:
            raise UsageError(f"--passphrase-env {env_var}: the environment variable {env_var} is empty")
        return value.encode("utf-8")
    if from_stdin:
        if sys.stdin.isatty():  # typed by a person: never echo it
            import getpass  # noqa: PLC0415

            line = getpass.getpass("private key passphrase: ")
        else:
            line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--passphrase-stdin: stdin gave an empty passphrase")
        return line.encode("utf-8")
    return None


def path_argument(text: str, what: str) -> Path:
    """A path argument; an empty one (an unset shell variable) is refused rather than read as
    the current directory."""
    if not text.strip():
        raise UsageError(f"{what}: expected a path, found an empty string (an unset variable?)")
    return Path(text)


def _unless_from_environment(trust_config: Path | None) -> Path | None:
    """``--trust-config`` unless it came from GUARD_SIGSTORE_TRUST_CONFIG (a private Sigstore
    instance set for a whole CI job also runs key-based steps, where it does not apply)."""
    from_env = os.environ.get("GUARD_SIGSTORE_TRUST_CONFIG")
    if trust_config is not None and from_env and trust_config == Path(from_env):
        return None
    return trust_config


def _given(**options: object) -> list[str]:
    return ["--" + name.replace("_", "-") for name, value in options.items() if value]


def build_signer(
    *,
    key: Path | None = None,
    certificate: Path | None = None,
    certificate_chain: list[Path] | None = None,
    keyless: bool = False,
    identity_token: str | None = None,
    trust_config: Path | None = None,
    passphrase_env: str | None = None,
    passphrase_stdin: bool = False,
) -> Signer:
    """Map the signing options to a Signer; exactly one method must be chosen."""
    if keyless:
        others = _given(key=key, certificate=certificate, certificate_chain=certificate_chain)
        if others:
            raise UsageError(f"--keyless signs without a key or certificate; remove {', '.join(others)}")
        if passphrase_env or passphrase_stdin:
            raise UsageError("--keyless uses no private key: remove --passphrase-env / --passphrase-stdin")
        from guard.signing.sign_sigstore import SigstoreSigner  # noqa: PLC0415

        # cast: the keyless backend declares ``method`` as a ClassVar; it satisfies the Protocol at runtime.
        return cast("Signer", SigstoreSigner(identity_token=identity_token, trust_config=trust_config))
    if identity_token is not None and identity_token == os.environ.get("SIGSTORE_ID_TOKEN"):
        identity_token = None  # from the environment (e.g. GitLab's id_tokens), not an option given
    trust_config = _unless_from_environment(trust_config)
    extra = _given(identity_token=identity_token, trust_config=trust_config)
    if extra:
        raise UsageError(f"{', '.join(extra)} only applies to --keyless signing")
    if certificate is not None or certificate_chain:
        if key is None or certificate is None or not certificate_chain:
            raise UsageError(
                "certificate signing needs all of --certificate LEAF, --certificate-chain PEM and --key "
                f"PRIVATE_PEM; found only {', '.join(_given(certificate=certificate, certificate_chain=certificate_chain, key=key))}"  # noqa: E501
            )
        from guard.signing.sign_certificate import CertificateSigner  # noqa: PLC0415

        passphrase = read_passphrase(passphrase_env, passphrase_stdin)
        return CertificateSigner.from_files(key, certificate, certificate_chain, passphrase=passphrase)
    if key is not None:
        from guard.signing.sign_key import KeySigner  # noqa: PLC0415

        return KeySigner.from_file(key, read_passphrase(passphrase_env, passphrase_stdin))
    raise UsageError(
        "choose a signing method: --key PRIVATE_PEM; --certificate LEAF --certificate-chain PEM --key "
        "PRIVATE_PEM; or --keyless"
    )


def build_verifier(
    *,
    key: Path | None = None,
    certificate_roots: Path | None = None,
    identity: str | None = None,
    identity_regex: str | None = None,
    issuer: str | None = None,
    trust_config: Path | None = None,
    offline: bool = False,
) -> Verifier:
    """Map the trust options to a Verifier; exactly one kind of trust must be given."""
    keyless = bool(identity or identity_regex or issuer)
    chosen = [
        name
        for name, on in (
            ("--key", key),
            ("--certificate-roots", certificate_roots),
            ("--identity/--identity-regex/--issuer", keyless),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"give exactly one kind of trust, found {' and '.join(chosen)}")
    if not chosen:
        raise UsageError(
            "say whom to trust: --key PUBLIC_PEM, --certificate-roots PEM, or --identity ID | "
            "--identity-regex RE with --issuer URL"
        )
    if not keyless:
        extra = _given(trust_config=_unless_from_environment(trust_config), offline=offline)
        if extra:
            raise UsageError(
                f"{', '.join(extra)} only applies to keyless verification (--identity, --issuer)"
            )
    if key is not None:
        from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

        return KeyVerifier.from_file(key)
    if certificate_roots is not None:
        from guard.signing.verify_certificate import CertificateVerifier  # noqa: PLC0415

        return CertificateVerifier.from_file(certificate_roots)
    if identity and identity_regex:
        raise UsageError("give --identity or --identity-regex, not both")
    if not (identity or identity_regex):
        raise UsageError("keyless verification needs the signer's --identity (or --identity-regex)")
    if not issuer:
        raise UsageError("keyless verification needs the OIDC --issuer the identity must come from")
    from guard.signing.verify_sigstore import SigstoreVerifier  # noqa: PLC0415

    verifier = SigstoreVerifier(
        issuer=issuer,
        identity=identity,
        identity_regex=identity_regex,
        trust_config=trust_config,
        offline=offline,
    )
    return cast("Verifier", verifier)


# --- option groups (see guard.commands.option_groups) ----------------------------------------
@dataclass(frozen=True)
class SigningOptions:
    """How a command signs: a key, a certificate with its chain and key, or keyless."""

    key: SignKeyOption = None
    certificate: CertificateOption = None
    certificate_chain: CertificateChainOption = None
    keyless: KeylessOption = False
    identity_token: IdentityTokenOption = None
    trust_config: SignTrustConfigOption = None
    passphrase_env: PassphraseEnvOption = None
    passphrase_stdin: PassphraseStdinOption = False

    def given(self) -> bool:
        """Whether a signing method was chosen."""
        return bool(self.key or self.certificate or self.certificate_chain or self.keyless)

    def signer(self) -> Signer:
        return build_signer(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class TrustOptions:
    """Whom to trust when verifying: a key, certificate roots, or a keyless identity."""

    key: VerifyKeyOption = None
    certificate_roots: CertificateRootsOption = None
    identity: IdentityOption = None
    identity_regex: IdentityRegexOption = None
    issuer: IssuerOption = None
    trust_config: TrustConfigOption = None
    offline: OfflineOption = False

    def given(self) -> bool:
        """Whether any trust option was given."""
        return any(getattr(self, f.name) for f in fields(self))

    def verifier(self) -> Verifier:
        return build_verifier(**{f.name: getattr(self, f.name) for f in fields(self)})


NO_SIGNING = SigningOptions()
NO_TRUST = TrustOptions()
