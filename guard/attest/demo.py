"""The attestation part of ``guard demo``: ML-BOM, dataset provenance, sign, attach, model facts.

Reads from ``ctx.extras`` (when an earlier step put it there): ``oci_reference``, the pushed
artifact (e.g. ``oci-layout:/tmp/guard-demo-x/layout:v1``); with it the attestations are signed for
the OCI artifact and attached as referrers, else for the model directory. Leaves for later steps:
``model_facts`` (the facts JSON document) and ``attestation_files`` (the bundle paths).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.demo import DemoContext, DemoFailed

if TYPE_CHECKING:
    from guard.attest.facts import ModelFacts

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


def _write_sbom(ctx: DemoContext, dataset: Path, digest: str) -> tuple[Path, dict[str, Any]]:
    from guard.attest.modelcard import ModelMetadata  # noqa: PLC0415
    from guard.attest.sbom import build_sbom  # noqa: PLC0415
    from guard.signing.model import write_atomic  # noqa: PLC0415

    meta = ModelMetadata.model_validate(
        {
            "version": "1.0.0",
            "supplier": "guard demo",
            "approach": "supervised",
            "datasets": [
                {
                    "name": "guard-demo/reviews",
                    "uri": dataset.as_uri(),
                    "digests": {"sha256": digest},
                    "licenses": ["CC-BY-4.0"],
                    "personalData": False,
                    "sensitiveData": False,
                }
            ],
            "energy": {"trainingKWh": 0.002, "co2eKg": 0.00095},
        }
    )
    bom_path = ctx.workdir / "bom.json"
    meta_path = ctx.workdir / "model-meta.json"
    meta_path.write_text(json.dumps(meta.model_dump(by_alias=True, exclude_defaults=True), indent=2) + "\n")
    ctx.command("sbom", str(ctx.model_dir), "--metadata", str(meta_path), "-o", str(bom_path))
    bom = build_sbom(ctx.model_dir, meta)
    write_atomic(bom_path, (json.dumps(bom, indent=2) + "\n").encode())
    ctx.ok(f"CycloneDX 1.6 ML-BOM, {len(bom['components'])} components, valid against the 1.6 schema")
    return bom_path, bom


def step_attestations(ctx: DemoContext) -> None:
    from guard.attest.collect import AttestationInput, directory_facts  # noqa: PLC0415
    from guard.attest.render import render_facts  # noqa: PLC0415
    from guard.attest.sign import sign_attestation  # noqa: PLC0415
    from guard.attest.specs import CYCLONEDX_TYPE, DATASET_PROVENANCE_TYPE  # noqa: PLC0415
    from guard.attest.subject import directory_subject  # noqa: PLC0415
    from guard.signing.model import write_atomic  # noqa: PLC0415
    from guard.signing.sign_key import KeySigner  # noqa: PLC0415
    from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

    ctx.title("Attestations: ML-BOM, dataset provenance, model facts")
    dataset, digest = _demo_dataset(ctx)
    bom_path, bom = _write_sbom(ctx, dataset, digest)
    datasets_path = ctx.workdir / "datasets.json"
    datasets_path.write_text(json.dumps(_datasets_predicate(dataset.as_uri(), digest), indent=2) + "\n")
    oci_ref = ctx.extras.get("oci_reference")
    signer = KeySigner.from_file(ctx.private_key)
    verifier = KeyVerifier.from_file(ctx.public_key)
    files = []
    if isinstance(oci_ref, str):
        from guard.attest.oci import oci_facts, oci_subject  # noqa: PLC0415
        from guard.oci.reference import parse_reference  # noqa: PLC0415
        from guard.oci.referrers import attach, load_attachment  # noqa: PLC0415
        from guard.oci.store import open_store  # noqa: PLC0415

        ref = parse_reference(oci_ref)
        target = oci_subject(ref, open_store(ref))
        subject = target.subject
    else:
        subject = directory_subject(ctx.model_dir)
    for flag, ptype, predicate_path, body in (
        ("--sbom", CYCLONEDX_TYPE, bom_path, bom),
        ("--datasets", DATASET_PROVENANCE_TYPE, datasets_path, json.loads(datasets_path.read_text())),
    ):
        out = ctx.workdir / f"{predicate_path.stem}.att.json"
        attach_flag = ["--attach"] if isinstance(oci_ref, str) else []
        ctx.command(
            "attest",
            oci_ref if isinstance(oci_ref, str) else str(ctx.model_dir),
            flag,
            str(predicate_path),
            "--key",
            str(ctx.private_key),
            "-o",
            str(out),
            *attach_flag,
        )
        write_atomic(out, sign_attestation(subject, ptype, body, signer))
        files.append(out)
        if isinstance(oci_ref, str):
            entry = attach(target.store, target.descriptor, load_attachment("attestation", out))
            ctx.ok(f"signed {ptype} for sha256:{subject.sha256[:16]}…, attached as {entry.digest[:19]}…")
        else:
            ctx.ok(f"signed {ptype} for sha256:{subject.sha256[:16]}… -> {out.name}")

    if isinstance(oci_ref, str):
        ctx.command("facts", oci_ref, "--key", str(ctx.public_key))
        facts = oci_facts(ref, verifier, target.store)
    else:
        att_args = [a for f in files for a in ("--attestation", str(f))]
        ctx.command(
            "facts",
            str(ctx.model_dir),
            "--signature",
            str(ctx.signature),
            "--key",
            str(ctx.public_key),
            *att_args,
        )
        inputs = [AttestationInput(f.read_bytes(), f.name) for f in files]
        facts = directory_facts(ctx.model_dir, verifier, inputs, signature=ctx.signature)
    render_facts(facts, ctx.console)
    _check(ctx, facts)
    ctx.extras["attestation_files"] = files


def _check(ctx: DemoContext, facts: ModelFacts) -> None:
    present = {a.name for a in facts.attestations if a.status == "present"}
    if not {"signature", "sbom", "datasets"} <= present:
        raise DemoFailed(f"expected the signature, SBOM and dataset attestations to verify, found {present}")
    if not any(d.approved for d in facts.datasets):
        raise DemoFailed("the approved dataset is not reported as approved")
    ctx.extras["model_facts"] = facts.to_json()
