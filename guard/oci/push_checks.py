"""What ``guard push`` refuses because it could never verify in a registry.

Before: both of these pushed with exit 0 and failed only at admission.

- A model signature that OCI verification cannot check against the layer digests: the ``shards``
  serialization, or a hash other than sha256 (a layer digest is the file's sha256). Refused
  before any upload with the reason and the command that signs it so it can be checked.
- An attestation whose subject is the model directory's OMS digest instead of the OCI manifest:
  admission reads attestations attached to the manifest and requires their subject to be the
  manifest digest, so such an attestation is reported invalid there. Refused before any upload
  with the command that would make a bound one (the manifest digest only exists after the push).
  An attestation naming some other digest is refused after the push, before attaching it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from guard.errors import UsageError
from guard.oci.referrers import Attachment
from guard.signing.types import Manifest


def refuse_unverifiable_signature(signed: Manifest | None, source: str) -> None:
    """A ``files``/sha256 signature is the only kind admission can check against layers."""
    if signed is None:
        return
    serialization = signed.serialization
    if serialization.method == "files" and serialization.hash_type == "sha256":
        return
    raise UsageError(
        f"{source}: the signature uses the {serialization.method} serialization with "
        f"{serialization.hash_type}; "
        "in a registry guard checks a model signature against the layer digests (one sha256 per file), so "
        "`guard verify oci://` and admission would deny this model. Sign it with `guard sign MODEL_DIR` "
        "(files, sha256: the default) before pushing, or push without --signature and sign the manifest "
        "digest afterwards"
    )


def _payload(data: bytes) -> dict[str, Any] | None:
    """The in-toto statement an attachment carries (bundle, DSSE envelope or bare statement),
    unverified: only to see which subject it names. None when it is not one."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    envelope = doc.get("dsseEnvelope", doc)
    if isinstance(envelope, dict) and isinstance(envelope.get("payload"), str):
        try:
            doc = json.loads(base64.b64decode(envelope["payload"], validate=True))
        except (ValueError, binascii.Error):
            return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("subject"), list) else None


def subject_digests(attachment: Attachment) -> list[str]:
    """The sha256 digests (hex) an attestation's statement names as its subjects."""
    statement = _payload(attachment.data)
    if statement is None:
        return []
    found = []
    for subject in statement["subject"]:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if isinstance(value, str):
            found.append(value.lower())
    return found


def refuse_directory_bound(attachments: Sequence[Attachment], directory_digest: str, target: str) -> None:
    """Before the push: refuse an attestation bound to the directory's OMS digest."""
    for item in attachments:
        if item.kind != "attestation" or directory_digest not in subject_digests(item):
            continue
        raise UsageError(
            f"{item.filename}: the attestation's subject is the model directory (OMS digest "
            f"sha256:{directory_digest}), not the OCI manifest it would be attached to; admission requires "
            "attestations of a registry artifact to name its manifest digest and would report it invalid. "
            f"Push without it, then attest the pushed artifact (`guard attest {target} --output FILE ...`: "
            "the subject is then the manifest digest) and attach that (`guard attach ... --attestation FILE`)"
        )


def refuse_unbound(attachments: Sequence[Attachment], manifest_digest: str, reference: str) -> None:
    """After the push, before attaching: every attestation must name the manifest digest."""
    hexdigest = manifest_digest.split(":", 1)[1]
    for item in attachments:
        if item.kind != "attestation":
            continue
        named = subject_digests(item)
        if named and hexdigest not in named:
            shown = ", ".join(f"sha256:{d}" for d in named[:3])
            raise UsageError(
                f"pushed {reference}@{manifest_digest}, but not attaching {item.filename}: its subject is "
                f"{shown}, not the manifest {manifest_digest}, so admission would report it invalid; "
                f"attest {reference}@{manifest_digest} and attach that instead"
            )
