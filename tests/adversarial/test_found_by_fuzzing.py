"""Crashes the fuzzers found (tests/fuzz, benchmarks/fuzz_parsers.py), one regression test each:
values of the wrong type inside documents of the right shape raised TypeError / AttributeError /
KeyError / pydantic's ValidationError instead of guard's error."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guard.attest.extract import (
    extract_cyclonedx,
    extract_dataset_provenance,
    extract_slsa,
    extract_spdx3,
)
from guard.attest.specs import load_spec_file
from guard.config import parse_config
from guard.errors import AttestationError, UntrustedContentError, UsageError
from guard.oci.modelpack import artifact_kind, artifact_layers
from guard.policy.input import Artifact, Verification, build_input_for_object


@pytest.mark.parametrize("artifact_type", [["a"], {"a": 1}])
def test_an_unhashable_artifact_type_is_no_model_artifact(artifact_type: Any) -> None:
    manifest = {"artifactType": artifact_type, "config": {"mediaType": ["x"]}, "layers": []}
    assert artifact_kind(manifest) == "other"  # was TypeError: unhashable type
    with pytest.raises(UntrustedContentError, match="not a model artifact"):
        artifact_layers({**manifest, "config": "a string"})  # was AttributeError


def _example(spec: str) -> dict[str, Any]:
    # load_spec_file is cached: the tests below change their copy, never the shared one
    return copy.deepcopy(load_spec_file(spec, "example.json"))


def _slsa_source_is_a_number() -> None:
    doc = _example("slsa-provenance/v1")
    doc["buildDefinition"]["resolvedDependencies"] = [1.5]
    extract_slsa(doc)


def _dataset_uri_is_a_list() -> None:
    doc = _example("dataset-provenance/v1")
    doc["datasets"][0]["uri"] = ["s3://a"]
    extract_dataset_provenance(doc)


def _spdx_graph_entry_is_a_number() -> None:
    doc = _example("spdx3-ai/v3")
    doc["@graph"].append(7)
    extract_spdx3(doc)


def _spdx_relationship_to_is_a_list_key() -> None:
    doc = _example("spdx3-ai/v3")
    for entry in doc["@graph"]:
        if isinstance(entry, dict) and entry.get("type") == "Relationship":
            entry["to"] = [["x"]]
    extract_spdx3(doc)


def _cyclonedx_is_a_list() -> None:
    extract_cyclonedx([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "read",
    [
        _slsa_source_is_a_number,
        _dataset_uri_is_a_list,
        _spdx_graph_entry_is_a_number,
        _spdx_relationship_to_is_a_list_key,
        _cyclonedx_is_a_list,
    ],
)
def test_a_predicate_of_an_unexpected_shape_is_an_attestation_error(read: Any) -> None:
    with pytest.raises(AttestationError):
        read()


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ("a string", "metadata"),
        ({"labels": "x"}, "metadata.labels"),
        ({"annotations": True}, "metadata.annotations"),
    ],
)
def test_policy_input_of_an_object_with_malformed_metadata(metadata: Any, where: str) -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": []}}
    artifacts = [Artifact("registry.local/m:v1", "container", ("c",), Verification("verified"))]
    with pytest.raises(UsageError, match=f"{where}: expected an object"):
        build_input_for_object(obj, obj["spec"], artifacts, parse_config({}))


def test_a_junk_manifest_in_a_layout_does_not_hide_the_other_referrers(tmp_path: Any) -> None:
    import json

    from guard.oci.layout import LayoutStore
    from guard.oci.types import OCI_MANIFEST, Descriptor, sha256_digest

    store = LayoutStore(tmp_path / "layout", create=True)
    subject = store.push_manifest(b'{"schemaVersion": 2}', OCI_MANIFEST, "v1")
    about = {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.size}
    good = store.push_manifest(json.dumps({"subject": about, "artifactType": "a/b"}).encode(), OCI_MANIFEST)
    store.push_manifest(
        json.dumps({"subject": about, "annotations": ["not", "a", "map"]}).encode(), OCI_MANIFEST
    )
    junk = b'{"subject": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    (tmp_path / "layout" / "blobs" / "sha256" / sha256_digest(junk).split(":")[1]).write_bytes(junk)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    index["manifests"].append(Descriptor(OCI_MANIFEST, sha256_digest(junk), len(junk)).to_json())
    (tmp_path / "layout" / "index.json").write_text(json.dumps(index))
    assert [d.digest for d in store.referrers(subject.digest)] == [good.digest]
