"""The OCI section of ``guard demo``: push to an OCI image layout with the signature attached,
verify there without reading a weight, and see a swapped weight layer refused.

Leaves ``ctx.extras["oci_reference"]`` (``oci-layout:layout:v1``, relative to the work directory)
and ``ctx.extras["oci_digest"]`` for later sections.
"""

from __future__ import annotations

import json

from guard.demo.context import DemoContext, DemoFailed
from guard.oci.layout import LayoutStore
from guard.oci.push import push_bytes
from guard.oci.types import OCI_MANIFEST

LAYOUT = "layout"


def _forge(ctx: DemoContext, digest: str) -> None:
    """What an attacker with write access to the store does: a copy of the manifest whose
    weight layer points at other bytes, tagged ``swapped``."""
    store = LayoutStore(ctx.path(LAYOUT))
    manifest = store.fetch_manifest(digest).json()
    layer = next(la for la in manifest["layers"] if la["mediaType"].endswith(".weight.v1.raw"))
    forged = b"not the signed weights"
    layer.update(digest=push_bytes(store, forged), size=len(forged))
    store.push_manifest(json.dumps(manifest, indent=2).encode(), OCI_MANIFEST, "swapped")
    ctx.say(f"  an attacker points the weight layer of a copy at other bytes: {LAYOUT}:swapped")


def step_push_and_verify(ctx: DemoContext) -> None:
    ctx.title("OCI: push to an OCI layout, attach, verify without reading the weights")
    target = f"oci-layout:{LAYOUT}:v1"
    pushed = ctx.guard("push", ctx.model, target, "--signature", ctx.signature, "--json").json()
    digest = pushed["digest"]
    ctx.ok(f"pushed a ModelPack artifact {digest}, {len(pushed['attached'])} referrer attached")
    ctx.extras["oci_reference"] = target
    ctx.extras["oci_digest"] = digest
    ctx.guard("verify", target, "--key", ctx.public_key)

    _forge(ctx, digest)
    swapped = f"oci-layout:{LAYOUT}:swapped"
    ctx.guard("attach", swapped, "--signature", ctx.signature)
    result = ctx.guard("verify", swapped, "--key", ctx.public_key, "--json", expect=1).json()
    if result.get("verified") is not False or result.get("error") != "IntegrityError":
        raise DemoFailed(f"expected the swapped layer to fail its integrity check, found {result}")
    ctx.refused(f"refused (exit 1): {result['reason']}")
