"""Artifact references: the one grammar guard reads them with.

Two spellings of the same grammar:

- the CLI's ``oci://NAME[:TAG][@DIGEST]`` and ``oci-layout:PATH[:TAG][@DIGEST]``
  (``parse_reference``);
- a Kubernetes image reference ``NAME[:TAG][@DIGEST]``, optionally with ``oci://``
  (``parse_image_reference``; no tag and no digest means ``latest``, as the kubelet reads it).

``NAME`` is ``[HOST[:PORT]/]PATH`` read as the container runtimes read it: the first component is
the registry host when it holds a ``.`` or a ``:`` or is ``localhost``; otherwise the reference
is on Docker Hub (``Upper/m`` is then an invalid repository: a one-label host needs its port).
Every spelling of one registry is normalised to one name, so that another spelling can never move
a reference to another trust rule:

- host names are lower-cased and lose a trailing dot (``Registry.Example.COM.`` ->
  ``registry.example.com``) unless the dot is what makes them a host (``registry./m``); IPv6
  literals are written compressed (``[0:0::1]`` -> ``[::1]``);
- the HTTPS default port is dropped (``registry.example.com:443`` -> ``registry.example.com``);
- Docker Hub's aliases (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``,
  ``registry.hub.docker.com``, with or without ``:443``) are ``docker.io``, and a one-component
  repository there is under ``library/`` (``nginx`` -> ``docker.io/library/nginx``). guard
  connects to ``registry-1.docker.io`` for it (``Reference.endpoint``).

Normalisation is idempotent: the text of a parsed reference parses to the same reference. Every
failure is a ``UsageError`` saying what was expected and what was found.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, replace
from pathlib import Path

from guard.errors import UsageError
from guard.oci.types import TAG_RE

REGISTRY_SCHEME = "oci://"
LAYOUT_SCHEME = "oci-layout:"
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
MAX_REFERENCE_LENGTH = 4096  # distribution caps names at 255; the rest is room for host and tag

_REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*\Z")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_DIGEST = re.compile(r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


def is_oci_reference(target: str) -> bool:
    """True when ``target`` names an artifact in a registry or layout (not a directory)."""
    return target.startswith((REGISTRY_SCHEME, LAYOUT_SCHEME))


@dataclass(frozen=True)
class Reference:
    """A parsed reference. Exactly one of ``host``+``repository`` (registry) or ``layout``.
    ``host`` is the normalised registry name (``docker.io`` for Docker Hub)."""

    host: str | None
    repository: str | None
    layout: Path | None
    tag: str | None
    digest: str | None

    @property
    def is_layout(self) -> bool:
        return self.layout is not None

    @property
    def registry(self) -> str:
        """The normalised registry name ("" for a layout)."""
        return self.host or ""

    @property
    def name(self) -> str:
        """``registry/repository``: what trust rules' globs are matched against."""
        if self.layout is not None:
            return f"{LAYOUT_SCHEME}{self.layout}"
        return f"{self.host}/{self.repository}"

    @property
    def endpoint(self) -> str:
        """The host[:port] guard connects to (Docker Hub's API host for ``docker.io``)."""
        if self.host is None:
            raise UsageError(f"{self}: a layout has no registry endpoint")
        return DOCKER_HUB_ENDPOINT if self.host == DOCKER_HUB else self.host

    @property
    def reference(self) -> str:
        """The tag or digest to resolve (digest preferred); ``latest`` when neither is given."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def base(self) -> str:
        if self.layout is not None:
            return f"{LAYOUT_SCHEME}{self.layout}"
        return f"{REGISTRY_SCHEME}{self.host}/{self.repository}"

    def image(self) -> str:
        """``registry/repository[:tag][@digest]``, without a scheme (the Kubernetes spelling)."""
        return self._versioned(self.name)

    def _versioned(self, text: str) -> str:
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        return self._versioned(self.base())

    @property
    def is_loopback(self) -> bool:
        if self.host is None:
            return True
        return host_is_loopback(self.host)


def split_host_port(host: str) -> tuple[str, int | None]:
    """``[::1]:5000`` -> ``("::1", 5000)``; ``registry.example`` -> ``("registry.example", None)``."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if host.count(":") == 1:
        name, port = host.split(":", 1)
        return name, int(port) if port.isdigit() else None
    return host, None


def host_is_loopback(host: str) -> bool:
    name, _ = split_host_port(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def normalize_host(host: str, text: str) -> str:
    """The canonical spelling of a registry ``host[:port]`` (see the module doc)."""
    if host.startswith("["):
        end = host.find("]")
        port_part = host[end + 1 :] if end > 0 else "?"
        try:
            address = ipaddress.IPv6Address(host[1:end])
        except ValueError as err:
            raise UsageError(f"{text}: invalid IPv6 registry address {host!r}") from err
        name = f"[{address.compressed}]"
    else:
        name, _, port_text = host.partition(":")
        port_part = f":{port_text}" if _ else ""
        name = name.lower().removesuffix(".")
        labels = name.split(".")
        if not name or not all(_HOST_LABEL.match(label) for label in labels):
            raise UsageError(
                f"{text}: invalid registry host {host!r} (expected a DNS name or IP address, "
                "with an optional :PORT)"
            )
    if port_part:
        port = port_part[1:]
        if not port_part.startswith(":") or not _PORT.match(port) or not 0 < int(port) < 65536:
            raise UsageError(f"{text}: invalid port in registry host {host!r} (expected 1-65535)")
        port_part = f":{int(port)}"
        # the HTTPS default port is the same registry; kept when the bare name would not read as
        # a host any more (a one-label name without dot), so the text stays a parse of itself
        if port_part == ":443" and (name.startswith("[") or "." in name or name == "localhost"):
            port_part = ""
    if not port_part and not name.startswith("[") and "." not in name and name != "localhost":
        # a one-label name with its trailing dot (``registry.``): without the dot it would no
        # longer read as a host (the text would name Docker Hub), so the dot stays
        name += "."
    canonical = name + port_part
    if canonical in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return canonical


def _split_tag_digest(rest: str, text: str) -> tuple[str, str | None, str | None]:
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(
                f"{text}: expected a digest sha256:<64 lowercase hex> (or sha512:<128>) after '@', "
                f"found {digest!r}"
            )
    tag: str | None = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.match(tag):
            raise UsageError(f"{text}: invalid tag {tag!r} (expected [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return rest, tag, digest


def _check_text(text: object, expected: str) -> str:
    if not isinstance(text, str):
        raise UsageError(f"expected {expected} as text, found {type(text).__name__}")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise UsageError(
            f"expected {expected} of at most {MAX_REFERENCE_LENGTH} characters, found {len(text)}"
        )
    if not text:
        raise UsageError(f"expected {expected}, found an empty string")
    return text


def _parse_name(rest: str, text: str, *, default_latest: bool) -> Reference:
    """``[HOST[:PORT]/]PATH[:TAG][@DIGEST]`` -> a normalised registry Reference."""
    name, tag, digest = _split_tag_digest(rest, text)
    first, slash, path = name.partition("/")
    if slash and _looks_like_host(first):
        host = normalize_host(first, text)
    else:
        host, path = DOCKER_HUB, name
    if host == DOCKER_HUB and path and "/" not in path:
        path = f"library/{path}"
    if not path or not all(_REPO_COMPONENT.match(c) for c in path.split("/")):
        raise UsageError(
            f"{text}: invalid repository {path!r} (expected lowercase path components such as models/llama-3)"
        )
    if default_latest and tag is None and digest is None:
        tag = "latest"
    return Reference(host, path, None, tag, digest)


def parse_reference(text: str) -> Reference:
    """Parse a CLI reference (``oci://...`` or ``oci-layout:...``); UsageError says what was
    expected and what was found."""
    expected = "an artifact reference oci://HOST/REPO[:TAG][@DIGEST] or oci-layout:PATH[:TAG]"
    _check_text(text, expected)
    if text.startswith(LAYOUT_SCHEME):
        rest = text[len(LAYOUT_SCHEME) :]
        path, tag, digest = _split_tag_digest(rest, text) if rest else ("", None, None)
        if not path:
            raise UsageError(f"{text}: expected oci-layout:PATH[:TAG][@DIGEST], found no PATH")
        return Reference(None, None, Path(path), tag, digest)
    if not text.startswith(REGISTRY_SCHEME):
        raise UsageError(f"expected {expected}, found {text!r}")
    rest = text[len(REGISTRY_SCHEME) :]
    if not rest:
        raise UsageError(f"{text}: expected oci://HOST/REPO[:TAG][@DIGEST], found no repository")
    return _parse_name(rest, text, default_latest=False)


# Admission parses the same few images again and again (every container of every pod of a
# Deployment, in the references, the rule match and the policy input): the parse of a text is
# kept (References are frozen). An error is not kept: it is raised again, parsed again.
@functools.lru_cache(maxsize=1024)
def parse_image_reference(text: str) -> Reference:
    """Parse a Kubernetes image reference ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]`` (an ``oci://``
    prefix is accepted); without tag or digest the tag is ``latest``."""
    expected = "an artifact reference [registry/]repository[:tag][@digest]"
    _check_text(text, expected)
    rest = text.removeprefix(REGISTRY_SCHEME)
    if not rest:
        raise UsageError(f"expected {expected}, found {text!r}")
    return _parse_name(rest, text, default_latest=True)
