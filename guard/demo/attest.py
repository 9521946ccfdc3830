"""The attestation section of ``guard demo``: ML-BOM, dataset provenance, sign, attach, facts.

Reads ``ctx.extras["oci_reference"]`` when the OCI section ran: the attestations are then signed for
the OCI artifact and attached as referrers, else for the model directory. Leaves ``model_facts``
(the facts JSON document) and ``attestation_files`` (the bundle paths) for later sections.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from guard.demo.context import DemoContext, DemoFailed

DATASET_ROWS = [
    {"text": "good film, would watch again", "label": 1},
    {"text": "bad plot and worse acting", "label": 0},
]


def _demo_dataset(ctx: DemoContext) -> tuple[Path, str]:
    path = ctx.workdir / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in DATASET_ROWS))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _datasets_predicate(uri: str, digest: str) -> dict[str, Any]:
    return {
        "standardsVersion": "1.0.0",
        "datasets": [
            {
                "name": "guard-demo/reviews",
                "uri": uri,
                "issuer": "guard demo",
                "source": "hand-written reviews",
                "collectionMethod": "first-party",
                "format": "jsonl",
                "datasetType": ["text"],
                "digests": {"sha256": digest},
                "licenses": ["CC-BY-4.0"],
                "relation": "trainedOn",
                "confidentialityLevel": "clear",
                "personalData": False,
                "sensitiveData": False,
                "approval": {
                    "by": "data-governance@example.com",
                    "at": "2026-03-02T10:15:00Z",
                    "reference": "DGOV-42",
                },
            }
        ],
    }


def _metadata(dataset_uri: str, digest: str) -> dict[str, Any]:
    """What ``guard sbom --metadata`` adds to what the model card and config.json say."""
    return {
        "version": "1.0.0",
        "supplier": "guard demo",
        "approach": "supervised",
        "datasets": [
            {
                "name": "guard-demo/reviews",
                "uri": dataset_uri,
                "digests": {"sha256": digest},
                "licenses": ["CC-BY-4.0"],
                "personalData": False,
                "sensitiveData": False,
            }
        ],
        "energy": {"trainingKWh": 0.002, "co2eKg": 0.00095},
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def step_attestations(ctx: DemoContext) -> None:
    ctx.title("Attestations: ML-BOM, dataset provenance, model facts")
    dataset, digest = _demo_dataset(ctx)
    _write_json(ctx.path("model-meta.json"), _metadata(dataset.as_uri(), digest))
    _write_json(ctx.path("datasets.json"), _datasets_predicate(dataset.as_uri(), digest))
    bom = ctx.guard("sbom", ctx.model, "--metadata", "model-meta.json", "-o", "bom.json", "--json").json()
    ctx.ok(f"{bom['format']} ML-BOM with {bom['components']} components -> {bom['output']}")
    oci_ref = ctx.extras.get("oci_reference")
    subject = oci_ref if isinstance(oci_ref, str) else ctx.model
    attach = ["--attach"] if isinstance(oci_ref, str) else []
    bundles = []
    for flag, predicate in (("--sbom", "bom.json"), ("--datasets", "datasets.json")):
        out = predicate.removesuffix(".json") + ".att.json"
        ctx.guard("attest", subject, flag, predicate, "--key", ctx.private_key, "-o", out, *attach)
        bundles.append(out)
    if isinstance(oci_ref, str):
        given: list[str] = []
    else:
        given = ["--signature", ctx.signature, *(a for b in bundles for a in ("--attestation", b))]
    require = ["--require", "signature", "--require", "sbom", "--require", "datasets"]
    ctx.guard("facts", subject, "--key", ctx.public_key, *given, *require)
    facts = ctx.guard("facts", subject, "--key", ctx.public_key, *given, "--json").json()
    _check(facts)
    ctx.ok("signature, ML-BOM and dataset provenance verified; the dataset's approval is recorded")
    ctx.extras["model_facts"] = facts
    ctx.extras["attestation_files"] = [ctx.path(b) for b in bundles]


def _check(facts: dict[str, Any]) -> None:
    present = {a["name"] for a in facts.get("attestations", []) if a.get("status") == "present"}
    if not {"signature", "sbom", "datasets"} <= present:
        raise DemoFailed(f"expected the signature, SBOM and dataset attestations to verify, found {present}")
    if not any(d.get("approved") for d in facts.get("datasets", [])):
        raise DemoFailed(f"the approved dataset is not reported as approved: {facts.get('datasets')}")
