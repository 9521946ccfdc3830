"""Matching artifacts to trust rules and namespaces to tenants.

Globs: ``*`` matches within one path segment (no ``/``), ``**`` matches across segments, ``?`` one
character. An artifact glob is matched against the reference's name (``registry/repository``,
normalized: ``nginx`` is ``docker.io/library/nginx``) unless the glob itself holds a tag (``:``
after the last ``/``) or a digest (``@``), in which case it is matched against the full reference.

Most specific wins (``match_rule``), in this order:
1. the artifact pattern with the most literal (non-wildcard) characters;
2. an exact namespace over a namespace glob, then the namespace glob with more literal characters;
3. the rule listed first in the config file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guard.errors import UsageError

if TYPE_CHECKING:
    from guard.config import Rule, Tenant

DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """A parsed artifact reference. ``name`` is ``registry/repository``."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


def parse_reference(ref: str) -> ImageRef:
    """Parse ``[registry/]repository[:tag][@digest]`` (with an optional ``oci://`` scheme)."""
    text = ref.strip().removeprefix("oci://")
    if not text or any(c.isspace() for c in text):
        raise UsageError(f"not an artifact reference: {ref!r} (expected registry/repository[:tag][@digest])")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(f"artifact reference {ref!r}: digest {digest!r} is not algorithm:hex")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first.lower() == "localhost"):
        # Host names are case-insensitive and the runtime pulls index.docker.io as docker.io:
        # normalized, so another spelling of the host cannot move a reference to another rule.
        registry, repository = first.lower(), rest
        if registry == "index.docker.io":
            registry = DEFAULT_REGISTRY
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or repository != repository.lower():
        raise UsageError(f"artifact reference {ref!r}: repository must be non-empty lowercase")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)


@functools.lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a guard glob into an anchored regular expression."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def literal_length(pattern: str) -> int:
    return len(pattern.replace("*", "").replace("?", ""))


def _pattern_has_version(pattern: str) -> bool:
    return "@" in pattern or ":" in pattern[pattern.rfind("/") + 1 :]


def artifact_matches(pattern: str, ref: ImageRef) -> bool:
    subject = str(ref) if _pattern_has_version(pattern) else ref.name
    return glob_regex(pattern).match(subject) is not None


def _namespace_score(patterns: Sequence[str], namespace: str) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for pattern in patterns:
        if glob_regex(pattern).match(namespace) is None:
            continue
        score = (1, len(pattern)) if pattern == namespace else (0, literal_length(pattern))
        if best is None or score > best:
            best = score
    return best


def match_rule(rules: Sequence[Rule], artifact_ref: str, namespace: str) -> Rule | None:
    """The most specific rule for ``artifact_ref`` in ``namespace``, or None (see module doc)."""
    ref = parse_reference(artifact_ref)
    best: tuple[tuple[int, int, int, int], Rule] | None = None
    for index, rule in enumerate(rules):
        artifact_scores = [literal_length(p) for p in rule.artifacts if artifact_matches(p, ref)]
        if not artifact_scores:
            continue
        ns = _namespace_score(rule.namespaces, namespace)
        if ns is None:
            continue
        key = (max(artifact_scores), ns[0], ns[1], -index)
        if best is None or key > best[0]:
            best = (key, rule)
    return None if best is None else best[1]


def tenant_for_namespace(tenants: Iterable[Tenant], namespace: str) -> Tenant | None:
    """The tenant owning ``namespace``: an exact name beats a glob, more literal beats less,
    the first tenant listed wins a tie."""
    best: tuple[tuple[int, int, int], Tenant] | None = None
    for index, tenant in enumerate(tenants):
        score = _namespace_score(tenant.namespaces, namespace)
        if score is None:
            continue
        key = (score[0], score[1], -index)
        if best is None or key > best[0]:
            best = (key, tenant)
    return None if best is None else best[1]


def registry_matches(patterns: Iterable[str], ref: ImageRef) -> bool:
    """Whether a reference lies under one of the registry / repository prefixes or globs
    (``registry.example.com/team-a`` covers everything below it)."""
    for pattern in patterns:
        trimmed = pattern.rstrip("/")
        if any(c in trimmed for c in "*?"):
            if glob_regex(trimmed).match(ref.name):
                return True
        elif ref.name == trimmed or ref.name.startswith(trimmed + "/"):
            return True
    return False
