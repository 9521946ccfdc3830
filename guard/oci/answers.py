"""Reading what a registry answers, with bounds: a capped body, the message of an error answer,
a ``WWW-Authenticate`` challenge. The registry chooses these bytes; none is read unbounded."""

from __future__ import annotations

import json
import re

import requests

from guard.errors import AnswerTooLargeError, GuardError, RegistryAuthError

MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # a non-streamed answer (referrers, token, ...)
MAX_ERROR_BYTES = 64 * 1024  # the body of an error answer, read for its message
MAX_TOKEN_BYTES = 1024 * 1024
MAX_CHALLENGE_CHARS = 8192


def oci_error(response: requests.Response) -> str:
    """The message of an error answer, from at most MAX_ERROR_BYTES of its body."""
    try:
        content = read_capped(response, MAX_ERROR_BYTES)
    except GuardError:
        content = b""
    try:
        body = json.loads(content)
        errors = body.get("errors", []) if isinstance(body, dict) else []
        parts = [
            f"{e.get('code', '?')}: {e.get('message', '')}".strip()[:300]
            for e in errors[:5]
            if isinstance(e, dict)
        ]
        if parts:
            return "; ".join(parts)
    except (ValueError, RecursionError, AttributeError, TypeError):
        pass
    text = content.decode("utf-8", "replace").strip() if len(content) < 500 else ""
    return text or response.reason or ""


def read_capped(response: requests.Response, limit: int) -> bytes:
    """Read a streamed response's body, refusing more than ``limit`` bytes (a Content-Length
    above it is refused before reading). The bytes are kept as ``response.content``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise AnswerTooLargeError(
            f"{response.url}: the answer would be {declared} bytes, more than {limit}: refused", limit=limit
        )
    buffer = bytearray()
    for chunk in response.iter_content(64 * 1024):
        buffer += chunk
        if len(buffer) > limit:
            response.close()
            raise AnswerTooLargeError(
                f"{response.url}: the answer is more than {limit} bytes: refused", limit=limit
            )
    body = bytes(buffer)
    response._content = body  # what requests' own .content does after reading
    return body


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"`` ->
    ``("bearer", {...})``. A registry writes this header: it is read with bounds, and anything
    that is not ``key="value"`` / ``key=token`` pairs is refused."""
    if len(header) > MAX_CHALLENGE_CHARS:
        raise RegistryAuthError(
            f"the WWW-Authenticate challenge is longer than {MAX_CHALLENGE_CHARS} characters"
        )
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        key = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params.setdefault(key, value.replace('\\"', '"'))
    return scheme.lower(), params


_CHALLENGE_PARAM = re.compile(
    r'([A-Za-z][A-Za-z0-9_-]{0,63})\s*=\s*(?:"((?:[^"\\]|\\.){0,4096})"|([^\s,"]{1,4096}))'
)
