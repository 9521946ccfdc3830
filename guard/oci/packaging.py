"""How a model artifact was packed, as its manifest and config say: the tool's own records.

- ModelPack's config ``modelfs.diffIds`` (model-spec v0.0.7, July 2025, "change snake case to
  camel case"; modctl 0.2.x writes it) and ``modelfs.diff_ids`` (v0.0.6 and before): both read,
  guard writes ``diffIds``.
- modctl's ``org.cncf.modctl.modelfile`` manifest annotation (the Modelfile it was built from).
- KitOps's ``ml.kitops.modelkit.kitfile`` manifest annotation (the Kitfile as JSON; the
  ``org.kitops.modelkit.kitfile`` spelling KitOps plans is read too).

All of it is what the pusher wrote: bounded, parsed with the untrusted-content parser, and never
more than metadata (``signed`` says whether a verified signature covered the manifest digest,
which covers these annotations and the config digest; a ``files`` signature does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guard.errors import UntrustedContentError
from guard.oci.modelpack import artifact_kind
from guard.untrusted import parse_object

MODCTL_MODELFILE = "org.cncf.modctl.modelfile"
KITFILE_ANNOTATIONS = ("ml.kitops.modelkit.kitfile", "org.kitops.modelkit.kitfile")
MAX_ANNOTATION_CHARS = 64 * 1024
MAX_CONFIG_BYTES = 1024 * 1024


def config_diff_ids(config: Mapping[str, Any]) -> list[str] | None:
    """``modelfs.diffIds`` (or the pre-v0.0.7 ``diff_ids``) of a ModelPack config; None when
    absent. Strings only; UntrustedContentError for anything else."""
    modelfs = config.get("modelfs")
    if not isinstance(modelfs, Mapping):
        return None
    value = modelfs.get("diffIds", modelfs.get("diff_ids"))
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise UntrustedContentError("config modelfs.diffIds: expected a list of digests")
    return list(value)


def _annotation(annotations: Mapping[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    if not isinstance(value, str) or not value:
        return None
    if len(value) > MAX_ANNOTATION_CHARS:
        raise UntrustedContentError(f"manifest annotation {key}: more than {MAX_ANNOTATION_CHARS} characters")
    return value


def packaging(manifest: Mapping[str, Any], config: bytes | None = None, *, signed: bool) -> dict[str, Any]:
    """The packaging facts of a parsed manifest (and its config blob when fetched): kind, tool,
    modelfile, kitfile, diffIds, signed. A field that cannot be read is null with a note."""
    raw_annotations = manifest.get("annotations")
    annotations: Mapping[str, Any] = raw_annotations if isinstance(raw_annotations, Mapping) else {}
    notes: list[str] = []
    modelfile = kitfile = None
    diff_ids: list[str] | None = None
    try:
        modelfile = _annotation(annotations, MODCTL_MODELFILE)
    except UntrustedContentError as err:
        notes.append(str(err))
    for key in KITFILE_ANNOTATIONS:
        try:
            raw = _annotation(annotations, key)
            if raw is not None:
                kitfile = parse_object(raw, f"manifest annotation {key}", max_bytes=MAX_ANNOTATION_CHARS)
                break
        except UntrustedContentError as err:
            notes.append(str(err))
    if config is not None:
        try:
            diff_ids = config_diff_ids(parse_object(config, "model config", max_bytes=MAX_CONFIG_BYTES))
        except UntrustedContentError as err:
            notes.append(str(err))
    tool = "modctl" if modelfile is not None else "kitops" if kitfile is not None else None
    if tool is None and artifact_kind(manifest) == "kitops":
        tool = "kitops"
    return {
        "kind": artifact_kind(manifest),
        "tool": tool,
        "modelfile": modelfile,
        "kitfile": kitfile,
        "diffIds": diff_ids,
        "signed": signed,
        "notes": notes,
    }
