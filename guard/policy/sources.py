"""Model sources guard cannot verify (``s3://``, ``hf://``, ``pvc://``, ...): how they are named
in the policy input, and which of them the platform allows (``policy.allowed_model_sources``).

One implementation, used by the admission pipeline (an allowed source is not denied as
unmatched) and by the policy input (``allowedSource``, which ``supply_chain.model_sources`` reads),
so the two cannot disagree.

A prefix allows a source when the source starts with it at a boundary: ``s3://models`` allows
``s3://models`` and ``s3://models/llama`` (and ``hf://org/model`` allows
``hf://org/model:<revision>``) but not ``s3://models-evil/x``, nor, after a bare host, a ``:``
(``https://models.example.com:x@evil.example/`` is fetched from ``evil.example``); a prefix
ending in ``/`` or ``://`` (a whole scheme: ``hf://``) allows what starts with it. Schemes compare
case-insensitively. A source with a ``.`` or ``..`` path segment (also percent-encoded) or a
backslash is never allowed: storage initializers join paths, so ``pvc://models/ok/../other``
would leave the allowed directory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://(.*)$", re.DOTALL)


@dataclass(frozen=True)
class SourceParts:
    """A source URI as the policy input names artifacts: ``name`` is ``scheme://host/path``
    without a revision, ``registry`` ``scheme://host``, ``tag`` a revision (``hf://org/m:<rev>``)."""

    name: str
    registry: str
    repository: str
    tag: str | None


def _canonical(value: str) -> str:
    match = _SCHEME_RE.match(value.strip())
    if match is None:
        return value.strip()
    return f"{match.group(1).lower()}://{match.group(2)}"


def source_parts(uri: str) -> SourceParts:
    text = _canonical(uri)
    match = _SCHEME_RE.match(text)
    if match is None:
        return SourceParts(name=text, registry="", repository=text, tag=None)
    scheme, rest = match.group(1), match.group(2)
    host, _, path = rest.partition("/")
    path = path.split("?", 1)[0].split("#", 1)[0]
    tag = None
    head, slash, last = path.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        path = f"{head}{slash}{last}"
    registry = f"{scheme}://{host}"
    return SourceParts(
        name=f"{registry}/{path}".rstrip("/") if path else registry,
        registry=registry,
        repository=path,
        tag=tag or None,
    )


def _escapes(uri: str) -> bool:
    rest = uri.split("://", 1)[-1]
    decoded = unquote(unquote(rest))
    if "\\" in decoded:
        return True
    return any(segment in (".", "..") for segment in re.split(r"[/;?#]", decoded))


def allowed_by(uri: str, prefixes: Sequence[str]) -> str | None:
    """The first prefix of ``prefixes`` that allows ``uri`` (see the module's docstring), or None."""
    if not prefixes or _escapes(uri):
        return None
    value = _canonical(uri)
    if urlsplit(value).scheme == "":
        return None
    for prefix in prefixes:
        p = _canonical(prefix)
        if not p:
            continue
        if p.endswith(("/", "://")):
            if value.startswith(p):
                return prefix
        elif value == p or value.startswith(p + "/") or (_has_path(p) and value.startswith(p + ":")):
            return prefix
    return None


def _has_path(prefix: str) -> bool:
    """Whether ``prefix`` names a path below its host (``hf://org/model``): only there is a ``:``
    after it a revision. After a host (``https://models.example.com``) it starts a port or the
    userinfo of another host (``https://models.example.com:x@evil.example/``)."""
    return "/" in prefix.split("://", 1)[-1]
