"""Loading Sigstore trust material: a ``ClientTrustConfig`` or ``TrustedRoot`` JSON file, or the
public-good instance (from sigstore-python's TUF client).

Errors: a file that cannot be used is a ``ConfigError`` (exit 2) naming the file and what is
wrong; a TUF repository that cannot be reached is an ``InfrastructureError`` (exit 3).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sigstore._internal.trust import KeyringPurpose
from sigstore.errors import Error as SigstoreError
from sigstore.models import ClientTrustConfig, TrustedRoot
from sigstore_models.trustroot import v1 as trustroot_v1

from guard.errors import ConfigError, InfrastructureError
from guard.untrusted import parse_json

log = logging.getLogger(__name__)

CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


def _reason(err: Exception) -> str:
    """A one-line reason; pydantic errors as ``field.path: message`` pairs."""
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()
        )
    return str(err)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"trust config {path}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"trust config {path}: cannot be read: {err}") from err
    data = parse_json(text, f"trust config {path}", error=ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"trust config {path}: expected a JSON object, found {type(data).__name__}")
    return data


def _media_type(data: dict[str, Any], path: Path) -> str:
    media_type = data.get("mediaType")
    if media_type not in (CLIENT_TRUST_CONFIG_MEDIA_TYPE, TRUSTED_ROOT_MEDIA_TYPE):
        raise ConfigError(
            f"trust config {path}: mediaType: expected {CLIENT_TRUST_CONFIG_MEDIA_TYPE} "
            f"(a ClientTrustConfig) or {TRUSTED_ROOT_MEDIA_TYPE} (a TrustedRoot), found {media_type!r}"
        )
    return str(media_type)


def load_trusted_root(path: Path) -> TrustedRoot:
    """The ``sigstore.models.TrustedRoot`` of a ClientTrustConfig or TrustedRoot file, checked to
    hold what keyless verification needs (Fulcio CA certificates, a transparency log key, a CT
    log key)."""
    data = _read_json(path)
    media_type = _media_type(data, path)
    inner_data = data.get("trustedRoot") if media_type == CLIENT_TRUST_CONFIG_MEDIA_TYPE else data
    if not isinstance(inner_data, dict):
        raise ConfigError(f"trust config {path}: trustedRoot: missing or not an object")
    try:
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(json.dumps(inner_data)))
    except (SigstoreError, ValueError, TypeError) as err:
        raise ConfigError(f"trust config {path}: not a valid Sigstore trusted root: {_reason(err)}") from err
    check_trusted_root(root, str(path))
    return root


def check_trusted_root(root: TrustedRoot, source: str) -> None:
    """Refuse a trusted root lacking a part keyless verification needs, naming the part."""
    parts = (
        ("certificateAuthorities (Fulcio CA certificates)", root.get_fulcio_certs),
        ("tlogs (transparency log keys)", lambda: root.rekor_keyring(KeyringPurpose.VERIFY)),
        ("ctlogs (certificate transparency log keys)", lambda: root.ct_keyring(KeyringPurpose.VERIFY)),
    )
    for name, probe in parts:
        try:
            probe()
        except (SigstoreError, ValueError) as err:
            raise ConfigError(f"trust config {source}: {name}: none usable ({err})") from err


def load_client_trust_config(path: Path) -> ClientTrustConfig:
    """The ``sigstore.models.ClientTrustConfig`` of a file; signing needs its signingConfig
    (Fulcio, Rekor and OIDC URLs), so a bare TrustedRoot is refused here."""
    data = _read_json(path)
    if _media_type(data, path) != CLIENT_TRUST_CONFIG_MEDIA_TYPE:
        raise ConfigError(
            f"trust config {path}: signing needs a ClientTrustConfig ({CLIENT_TRUST_CONFIG_MEDIA_TYPE}) with "
            "a signingConfig naming the Fulcio and Rekor URLs; this file is only a TrustedRoot"
        )
    try:
        config = ClientTrustConfig.from_json(json.dumps(data))
        config.signing_config  # noqa: B018 - parses and checks the Fulcio / Rekor services
        root = config.trusted_root
    except (SigstoreError, ValueError, TypeError) as err:
        raise ConfigError(
            f"trust config {path}: not a valid Sigstore client trust config: {_reason(err)}"
        ) from err
    check_trusted_root(root, str(path))
    return config


_PUBLIC_GOOD_TTL = timedelta(hours=24)
_public_good: dict[bool, tuple[datetime, ClientTrustConfig]] = {}
_public_good_lock = threading.Lock()


def public_good_trust_config(*, offline: bool) -> ClientTrustConfig:
    """The public-good instance's ClientTrustConfig via TUF; ``offline`` uses only the local
    cache (or the copy shipped with sigstore-python) and never touches the network. Kept for a
    day per process, so that a long-running verifier refreshes it without doing so per request."""
    now = datetime.now(UTC)
    with _public_good_lock:
        cached = _public_good.get(offline)
        if cached is not None and now - cached[0] < _PUBLIC_GOOD_TTL:
            return cached[1]
        try:
            config = ClientTrustConfig.production(offline=offline)
            check_trusted_root(config.trusted_root, "of the public-good instance")
        except (SigstoreError, OSError, ValueError) as err:
            where = "the local TUF cache" if offline else "https://tuf-repo-cdn.sigstore.dev"
            raise InfrastructureError(
                f"cannot load the Sigstore public-good trust root from {where}: {err}"
                + ("" if offline else " (use --offline to rely on the cached copy, or --trust-config FILE)")
            ) from err
        _public_good[offline] = (now, config)
        return config
