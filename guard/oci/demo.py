"""The OCI part of ``guard demo``: push to an OCI layout store, attach the signature, verify from
the store without reading a weight, and see a swapped layer refused.

Leaves ``ctx.extras["oci_reference"]`` (``oci-layout:<workdir>/layout:v1``) for later steps.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from guard.errors import IntegrityError
from guard.oci.push import push_bytes, push_model
from guard.oci.reference import parse_reference
from guard.oci.referrers import attach, list_referrers, load_attachment
from guard.oci.store import open_store
from guard.oci.types import OCI_MANIFEST
from guard.oci.verify import verify_oci
from guard.signing import KeyVerifier

if TYPE_CHECKING:
    from guard.demo import DemoContext


def step_push_and_verify(ctx: DemoContext) -> None:
    from guard.demo import DemoFailed  # noqa: PLC0415 - guard.demo imports this module lazily

    ctx.title("OCI: push to a registry-less store, attach, verify without downloading weights")
    target = f"oci-layout:{ctx.workdir / 'layout'}:v1"
    ref = parse_reference(target)
    store = open_store(ref, create=True)
    ctx.command("push", str(ctx.model_dir), target, "--signature", str(ctx.signature))
    pushed = push_model(store, ctx.model_dir, ref.tag)
    ctx.ok(
        f"pushed a ModelPack artifact: {len(pushed.layers)} raw layers, manifest {pushed.descriptor.digest}"
    )
    attach(store, pushed.descriptor, load_attachment("signature", ctx.signature))
    found = list_referrers(store, pushed.descriptor.digest)
    ctx.ok(f"attached the signature as an OCI referrer ({len(found)} referrer(s) of the manifest)")
    ctx.extras["oci_reference"] = target
    ctx.extras["oci_digest"] = pushed.descriptor.digest

    ctx.command("verify", target, "--key", str(ctx.public_key))
    verifier = KeyVerifier.from_file(ctx.public_key)
    result = verify_oci(ref, verifier, store)
    ctx.ok(
        f"verified {result.digest}: {len(result.files)} signed files match the layer digests "
        "(no weight blob read)"
    )

    # A copy of the manifest whose weight layer points at other bytes, carrying the same signature.
    manifest = store.fetch_manifest(pushed.descriptor.digest).json()
    layer = next(la for la in manifest["layers"] if la["mediaType"].endswith(".weight.v1.raw"))
    forged = b"not the signed weights"
    layer.update(digest=push_bytes(store, forged), size=len(forged))
    swapped = store.push_manifest(json.dumps(manifest, indent=2).encode(), OCI_MANIFEST, "swapped")
    ctx.command("verify", f"oci-layout:{ctx.workdir / 'layout'}:swapped", "--key", str(ctx.public_key))
    attach(store, swapped, load_attachment("signature", ctx.signature))
    try:
        verify_oci(parse_reference(f"oci-layout:{ctx.workdir / 'layout'}:swapped"), verifier, store)
    except IntegrityError as err:
        ctx.refused(f"verification failed (exit 1): {err}")
    else:
        raise DemoFailed("an artifact with a swapped weight layer verified")
