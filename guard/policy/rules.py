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
from typing import TYPE_CHECKING

from guard.errors import UsageError
from guard.oci.reference import DOCKER_HUB, Reference, normalize_host, parse_image_reference

if TYPE_CHECKING:
    from guard.config import Rule, Tenant

DEFAULT_REGISTRY = DOCKER_HUB

# The one reference grammar (guard.oci.reference): a rule, the CLI and admission read a reference
# the same way, and every spelling of a registry (``docker.io:443``, ``index.docker.io``,
# ``Registry.Example.com:443``) is normalised before it is matched.
ImageRef = Reference


def parse_reference(ref: str) -> ImageRef:
    """Parse ``[registry/]repository[:tag][@digest]`` (with an optional ``oci://`` scheme),
    normalised (see ``guard.oci.reference``); UsageError when it is not a reference."""
    return parse_image_reference(ref)


@functools.lru_cache(maxsize=4096)
def normalize_pattern(pattern: str) -> str:
    """A rule's glob with its registry spelled as references are (``Registry.Example.com:443/m/**``
    -> ``registry.example.com/m/**``, ``index.docker.io/org/*`` -> ``docker.io/org/*``), so a rule
    written with another spelling of a host still covers that host. A glob in the host, or a host
    guard cannot read, is left as written."""
    first, slash, rest = pattern.partition("/")
    if not slash or any(c in first for c in "*?[") or not first:
        return pattern
    try:
        host = normalize_host(first, pattern)
    except UsageError:
        return pattern
    return f"{host}/{rest}"


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
    subject = ref.image() if _pattern_has_version(pattern) else ref.name
    return glob_regex(normalize_pattern(pattern)).match(subject) is not None


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
        trimmed = normalize_pattern(pattern.rstrip("/"))
        if any(c in trimmed for c in "*?"):
            if glob_regex(trimmed).match(ref.name):
                return True
        elif ref.name == trimmed or ref.name.startswith(trimmed + "/"):
            return True
    return False
