"""The packer's records in model facts: ModelPack's config ``modelfs.diffIds`` (and the
pre-v0.0.7 ``diff_ids``), modctl's ``org.cncf.modctl.modelfile`` and KitOps's Kitfile
annotation; guard writes ``diffIds``. They are metadata: ``signed`` only when a verified signature
covered the manifest digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guard.attest.oci import oci_facts
from guard.errors import UntrustedContentError
from guard.oci.layout import LayoutStore
from guard.oci.packaging import MAX_ANNOTATION_CHARS, config_diff_ids, packaging
from guard.oci.push import push_bytes, push_model
from guard.oci.referrers import attach, load_attachment
from guard.oci.types import KITOPS_CONFIG, MODELPACK_ARTIFACT, MODELPACK_CONFIG, OCI_MANIFEST
from guard.signing import KeySigner, KeyVerifier, sign_model, sign_statement

D = "sha256:" + "ab" * 32


def test_both_spellings_of_diff_ids_are_read() -> None:
    assert config_diff_ids({"modelfs": {"type": "layers", "diffIds": [D]}}) == [D]
    assert config_diff_ids({"modelfs": {"type": "layers", "diff_ids": [D]}}) == [D]
    assert config_diff_ids({"modelfs": {"type": "layers"}}) is None
    with pytest.raises(UntrustedContentError, match="expected a list of digests"):
        config_diff_ids({"modelfs": {"diffIds": [1]}})


def test_modctl_and_kitops_annotations() -> None:
    modctl = {
        "artifactType": MODELPACK_ARTIFACT,
        "annotations": {"org.cncf.modctl.modelfile": "NAME llama\n"},
    }
    facts = packaging(modctl, None, signed=True)
    assert facts["tool"] == "modctl" and facts["modelfile"] == "NAME llama\n" and facts["signed"] is True
    kitfile = {"manifestVersion": "1.0.0", "package": {"name": "llama"}}
    kit = {
        "artifactType": MODELPACK_ARTIFACT,
        "annotations": {"ml.kitops.modelkit.kitfile": json.dumps(kitfile)},
    }
    facts = packaging(kit, None, signed=False)
    assert facts["tool"] == "kitops" and facts["kitfile"] == kitfile and facts["kind"] == "modelpack"
    assert packaging({"config": {"mediaType": KITOPS_CONFIG}}, None, signed=False)["tool"] == "kitops"


def test_junk_annotations_are_notes_not_failures() -> None:
    junk = {
        "annotations": {
            "org.cncf.modctl.modelfile": "x" * (MAX_ANNOTATION_CHARS + 1),
            "ml.kitops.modelkit.kitfile": '{"a": 1, "a": 2}',
        }
    }
    facts = packaging(junk, b"[1]", signed=False)
    assert facts["modelfile"] is None and facts["kitfile"] is None and facts["diffIds"] is None
    assert len(facts["notes"]) == 3
    assert any("more than" in n for n in facts["notes"]) and any(
        "twice" in n or "duplicate" in n for n in facts["notes"]
    )


def test_guard_writes_diff_ids_and_facts_read_them(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "weights.bin").write_bytes(b"w" * 100)
    signature = tmp_path / "model.sig"
    sign_model(model, KeySigner.from_file(private), signature_path=signature)
    layout = tmp_path / "layout"
    store = LayoutStore(layout, create=True)
    pushed = push_model(store, model, "v1")
    attach(store, pushed.descriptor, load_attachment("signature", signature))
    facts = oci_facts(f"oci-layout:{layout}:v1", KeyVerifier.from_file(public), store).to_json()
    packed = facts["packaging"]
    assert packed["kind"] == "modelpack" and packed["diffIds"] == [d.digest for d in pushed.layers]
    assert packed["signed"] is False  # a files signature does not cover the manifest's annotations


def _crafted(store: LayoutStore, annotations: dict[str, str], config: dict[str, Any]) -> str:
    body = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODELPACK_ARTIFACT,
        "config": {"mediaType": MODELPACK_CONFIG, "digest": push_bytes(store, body), "size": len(body)},
        "layers": [],
        "annotations": annotations,
    }
    return store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, "crafted").digest


def test_a_manifest_signature_makes_the_records_signed(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """modctl output (old diff_ids spelling, Modelfile annotation) signed over its manifest digest."""
    private, public = keypair
    layout = tmp_path / "layout"
    store = LayoutStore(layout, create=True)
    digest = _crafted(
        store, {"org.cncf.modctl.modelfile": "FROM x\n"}, {"modelfs": {"type": "layers", "diff_ids": [D]}}
    )
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "crafted", "digest": {"sha256": digest.split(":", 1)[1]}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    bundle = tmp_path / "sig.json"
    bundle.write_bytes(sign_statement(statement, KeySigner.from_file(private)))
    attach(store, store.resolve(digest), load_attachment("signature", bundle))
    facts = oci_facts(f"oci-layout:{layout}:crafted", KeyVerifier.from_file(public), store).to_json()
    assert facts["packaging"]["signed"] is True
    assert facts["packaging"]["tool"] == "modctl" and facts["packaging"]["diffIds"] == [D]
