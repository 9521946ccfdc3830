"""Artifact references: ``oci://HOST[:PORT]/REPO[:TAG][@DIGEST]`` and
``oci-layout:PATH[:TAG][@DIGEST]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from guard.errors import UsageError
from guard.oci.types import DIGEST_RE, TAG_RE

REGISTRY_SCHEME = "oci://"
LAYOUT_SCHEME = "oci-layout:"
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")


def is_oci_reference(target: str) -> bool:
    """True when ``target`` names an artifact in a registry or layout (not a directory)."""
    return target.startswith((REGISTRY_SCHEME, LAYOUT_SCHEME))


@dataclass(frozen=True)
class Reference:
    """A parsed reference. Exactly one of ``host``+``repository`` (registry) or ``layout``."""

    host: str | None
    repository: str | None
    layout: Path | None
    tag: str | None
    digest: str | None

    @property
    def is_layout(self) -> bool:
        return self.layout is not None

    @property
    def reference(self) -> str:
        """The tag or digest to resolve (digest preferred); ``latest`` when neither is given."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.host, self.repository, self.layout, self.tag, digest)

    def base(self) -> str:
        if self.layout is not None:
            return f"{LAYOUT_SCHEME}{self.layout}"
        return f"{REGISTRY_SCHEME}{self.host}/{self.repository}"

    def __str__(self) -> str:
        out = self.base()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def is_loopback(self) -> bool:
        if self.host is None:
            return True
        return host_is_loopback(self.host)


def host_is_loopback(host: str) -> bool:
    name = host
    if name.startswith("["):
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_tag_digest(rest: str, text: str) -> tuple[str, str | None, str | None]:
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.rsplit("@", 1)
        if not DIGEST_RE.match(digest):
            raise UsageError(
                f"{text}: expected a digest sha256:<64 lowercase hex> after '@', found {digest!r}"
            )
    tag: str | None = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.match(tag):
            raise UsageError(f"{text}: invalid tag {tag!r} (expected [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return rest, tag, digest


def parse_reference(text: str) -> Reference:
    """Parse a reference; UsageError says what was expected and what was found."""
    if text.startswith(LAYOUT_SCHEME):
        rest = text[len(LAYOUT_SCHEME) :]
        if not rest:
            raise UsageError(f"{text}: expected oci-layout:PATH[:TAG][@DIGEST], found no PATH")
        path, tag, digest = _split_tag_digest(rest, text)
        if not path:
            raise UsageError(f"{text}: expected oci-layout:PATH[:TAG][@DIGEST], found no PATH")
        return Reference(None, None, Path(path), tag, digest)
    if not text.startswith(REGISTRY_SCHEME):
        raise UsageError(
            f"expected an artifact reference oci://HOST/REPO[:TAG][@DIGEST] or oci-layout:PATH[:TAG], "
            f"found {text!r}"
        )
    rest = text[len(REGISTRY_SCHEME) :]
    if "/" not in rest:
        raise UsageError(f"{text}: expected oci://HOST/REPO[:TAG][@DIGEST], found no repository")
    host, path = rest.split("/", 1)
    if not host or not _HOST_RE.match(host):
        raise UsageError(f"{text}: invalid registry host {host!r}")
    repository, tag, digest = _split_tag_digest(path, text)
    components = repository.split("/")
    if not repository or not all(_REPO_COMPONENT.match(c) for c in components):
        raise UsageError(
            f"{text}: invalid repository {repository!r} (expected lowercase path components "
            "such as models/llama-3)"
        )
    return Reference(host, repository, None, tag, digest)
