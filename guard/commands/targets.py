"""What the CLI accepts where an artifact is named: ``oci://``, ``oci-layout:`` and a reference
written as in a Pod spec (``registry.example.com/team/model:v1``, ``repo@sha256:...``), read
with the grammar the webhook reads images with (``guard.oci.reference.parse_image_reference``)."""

from __future__ import annotations

from pathlib import Path

# the schemes of guard.oci.reference, spelled here so that importing the CLI stays light (the
# parser is imported when a reference is read)
REGISTRY_SCHEME = "oci://"
LAYOUT_SCHEME = "oci-layout:"


def _written_as_reference(text: str) -> bool:
    """A text that can only be a reference: a digest, a tag after the last ``/``, or a first
    component that names a registry host (``.``, ``:`` or ``localhost``) followed by a path."""
    if text.startswith(("/", "./", "../", "~")) or "\\" in text:
        return False
    if "@sha256:" in text or "@sha512:" in text:
        return True
    first, slash, rest = text.partition("/")
    if slash and rest and ("." in first or ":" in first or first == "localhost"):
        return True
    return ":" in text.rsplit("/", 1)[-1]


def artifact_target(text: str) -> str:
    """``text`` as the CLI's ``oci://`` / ``oci-layout:`` spelling when it names an artifact,
    unchanged when it is a path (an existing file or directory is always a path). A Pod-spec
    reference that does not parse raises the parser's UsageError (what was expected, found)."""
    if is_artifact(text) or Path(text).exists() or not _written_as_reference(text):
        return text
    from guard.oci.reference import parse_image_reference  # noqa: PLC0415

    return REGISTRY_SCHEME + parse_image_reference(text).image()


def is_artifact(text: str) -> bool:
    return text.startswith((REGISTRY_SCHEME, LAYOUT_SCHEME))
