"""DSSE (Dead Simple Signing Envelope) pre-authentication encoding and base64 helpers."""

from __future__ import annotations

import base64
import binascii

from guard.errors import BundleFormatError


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths in bytes)."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def pae_legacy(payload_type: str, payload: bytes) -> bytes:
    """The encoding model-signing v0.2 signed by mistake (``str`` of the bytes spliced into text).

    Only ever tried when verifying, after the correct PAE failed, as the reference implementation
    does, so that v0.2 signatures still verify."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


def b64decode(value: object, field: str) -> bytes:
    """Strict standard base64 (padding required, as protobuf JSON writes it); errors name the field."""
    if not isinstance(value, str):
        raise BundleFormatError(
            f"{field}: expected a base64 string, found {type(value).__name__}", field=field
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        # protobuf JSON also allows URL-safe base64; accept it before giving up.
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise BundleFormatError(f"{field}: not valid base64 ({err})", field=field) from err


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
