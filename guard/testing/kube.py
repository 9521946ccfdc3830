"""Test doubles for the Kubernetes API side of ``guard scan``.

kmock's emulator serves discovery and objects but does not page lists. ``Pager`` serves a list
of objects in ``limit``-sized chunks with ``continue`` tokens, as an API server does, and records
every request; register it as a kmock reaction (``kmock["get /api/v1/pods"] << pager``). A
scripted 410 for a token goes in front of it (the first matching reaction answers)::

    kmock[f"get /api/v1/pods?continue={pager.token(500)}"][:1] << 410 << expired_status()
    kmock["get /api/v1/pods"] << pager
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _kind_list(kind: str) -> str:
    return f"{kind}List"


@dataclass
class Pager:
    """Serves ``objects`` as a paged LIST of ``kind`` (``limit`` / ``continue``)."""

    kind: str
    objects: Sequence[Mapping[str, Any]]
    api_version: str = "v1"
    resource_version: str = "1000"
    requests: list[tuple[int | None, str | None]] = field(default_factory=list)

    @staticmethod
    def token(offset: int) -> str:
        return base64.urlsafe_b64encode(f"offset={offset}".encode()).decode()

    @staticmethod
    def _offset(token: str) -> int:
        return int(base64.urlsafe_b64decode(token.encode()).decode().split("=", 1)[1])

    def __call__(self, request: Any) -> dict[str, Any]:
        params: Mapping[str, str] = request.params
        limit = int(params["limit"]) if "limit" in params else None
        token = params.get("continue")
        self.requests.append((limit, token))
        start = self._offset(token) if token else 0
        end = len(self.objects) if limit is None else min(len(self.objects), start + limit)
        metadata: dict[str, Any] = {"resourceVersion": self.resource_version}
        if end < len(self.objects):
            metadata["continue"] = self.token(end)
            metadata["remainingItemCount"] = len(self.objects) - end
        items = [
            {k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in self.objects[start:end]
        ]
        return {
            "apiVersion": self.api_version,
            "kind": _kind_list(self.kind),
            "metadata": metadata,
            "items": items,
        }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``Status`` body as the API server sends with an error."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def expired_status() -> dict[str, Any]:
    return status(
        410, "Expired", "The provided continue parameter is too old to display a consistent list result."
    )


def forbidden_status(resource: str, group: str = "") -> dict[str, Any]:
    return status(
        403,
        "Forbidden",
        f'{resource}{"." + group if group else ""} is forbidden: User "system:serviceaccount:guard:scanner" '
        f'cannot list resource "{resource}" in API group "{group}" at the cluster scope',
    )


def write_kubeconfig(path: Path, server: str, token: str = "test-token", context: str = "test") -> Path:  # noqa: S107
    """A kubeconfig for a test API server (plain HTTP, bearer token)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "test", "user": "test"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(doc))
    return path
