"""Signing backend: Sigstore keyless (OMS "sigstore" method), with sigstore-python.

An ephemeral key is certified by Fulcio for the signer's OIDC identity, the DSSE envelope is logged
in Rekor, and the result is a bundle v0.3 (certificate, log entry with inclusion proof, checkpoint
and signed entry timestamp).

The identity token comes from, in order: the ``identity_token`` argument; ambient CI credentials
(sigstore's ``detect_credential``: GitHub Actions with ``permissions: id-token: write``, GitLab CI
``SIGSTORE_ID_TOKEN``, Buildkite, Google Cloud); an interactive browser flow, only when stdin is a
terminal and ``CI`` is not set. Otherwise a UsageError says how to supply one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import requests
from sigstore import dsse
from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig
from sigstore.oidc import (
    ExpiredIdentity,
    IdentityError,
    IdentityToken,
    Issuer,
    IssuerError,
    detect_credential,
)
from sigstore.sign import SigningContext

from guard.errors import InfrastructureError, UsageError
from guard.signing.sigstore_trust import load_client_trust_config, public_good_trust_config
from guard.signing.types import SigningMethod

log = logging.getLogger(__name__)

MISSING_IDENTITY_HELP = (
    "keyless signing needs an OIDC identity token, and none was found: pass --identity-token TOKEN, "
    "or run in CI with OIDC enabled (GitHub Actions: `permissions: id-token: write`; GitLab CI: an "
    "`id_tokens: SIGSTORE_ID_TOKEN: {aud: sigstore}` entry), or run in a terminal (not CI) to log in "
    "with a browser"
)


def _interactive() -> bool:
    ci = os.environ.get("CI", "").strip().lower()
    return sys.stdin is not None and sys.stdin.isatty() and ci in ("", "0", "false")


class SigstoreSigner:
    """Signs in-toto statements keyless through a Sigstore instance (public good by default)."""

    method: SigningMethod = "keyless"

    def __init__(self, identity_token: str | None = None, trust_config: Path | None = None) -> None:
        if identity_token is not None and not identity_token.strip():
            raise UsageError("--identity-token: expected an OIDC token (a JWT), found an empty string")
        self._identity_token = identity_token.strip() if identity_token else None
        self.trust_config = trust_config
        self._config: ClientTrustConfig | None = (
            load_client_trust_config(trust_config) if trust_config else None
        )
        if self._identity_token is not None:  # a malformed token fails now, not after the hashing
            self._parse_token(self._identity_token, "--identity-token")

    def _trust(self) -> ClientTrustConfig:
        if self._config is None:
            self._config = public_good_trust_config(offline=False)
        return self._config

    def _token(self) -> IdentityToken:
        raw, source = self._identity_token, "--identity-token"
        if raw is None:
            source = "the CI environment"
            try:
                raw = detect_credential()
            except IdentityError as err:
                raise UsageError(
                    f"ambient OIDC credentials were found but cannot be used: {err} "
                    "(GitHub Actions needs `permissions: id-token: write`)"
                ) from err
        if raw is None:
            if not _interactive():
                raise UsageError(MISSING_IDENTITY_HELP)
            try:
                return Issuer(self._trust().signing_config.get_oidc_url()).identity_token()
            except (IdentityError, IssuerError, SigstoreError) as err:
                raise UsageError(f"interactive OIDC login failed: {err}") from err
        return self._parse_token(raw, source)

    @staticmethod
    def _parse_token(raw: str, source: str) -> IdentityToken:
        try:
            return IdentityToken(raw)
        except IdentityError as err:
            raise UsageError(
                f"the identity token from {source} cannot be used: {err} (expected an OIDC JWT with "
                "audience 'sigstore', within its validity period)"
            ) from err

    def sign_payload(self, payload: bytes) -> dict[str, Any]:
        try:
            statement = dsse.Statement(payload)
        except SigstoreError as err:
            raise UsageError(f"keyless signing expects an in-toto Statement v1 payload: {err}") from err
        token = self._token()  # before the trust root: a missing token is exit 2 even offline
        config = self._trust()
        try:
            context = SigningContext.from_trust_config(config)
            with context.signer(token) as signer:
                bundle = signer.sign_dsse(statement)
        except (ExpiredIdentity, ExpiredCertificate) as err:
            raise UsageError(f"the identity token or signing certificate has expired: {err!r}") from err
        except (FulcioClientError, RekorClientError, requests.RequestException) as err:
            raise InfrastructureError(f"the Sigstore instance refused or failed the signing: {err}") from err
        except SigstoreError as err:
            raise InfrastructureError(f"keyless signing failed: {err}") from err
        result: dict[str, Any] = json.loads(bundle.to_json())
        return result
