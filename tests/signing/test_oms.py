"""OMS statement: building, reading back, ordering, subject digest, legacy v0.2, malformed input."""

from __future__ import annotations

import copy
import hashlib
import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.errors import BundleFormatError
from guard.signing.manifest import make_manifest, resource_sort_key, subject_digest
from guard.signing.oms import manifest_from_statement, statement_for_manifest
from guard.signing.types import (
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    Resource,
    Serialization,
    SerializationMethod,
)

_component = st.text(alphabet="ab.-_0Z é", min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
_segment = st.lists(_component, min_size=1, max_size=3).map("/".join)
_digest = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def manifests(draw: st.DrawFn, method: SerializationMethod = "files") -> Any:
    names = draw(st.lists(_segment, min_size=1, max_size=12, unique=True))
    serialization = Serialization(method=method)
    algorithm = "sha256" if method == "files" else f"sha256-sharded-{serialization.shard_size}"
    if method == "shards":
        names = [f"{n}:0:{i + 1}" for i, n in enumerate(names)]
    return make_manifest(serialization, [Resource(n, algorithm, draw(_digest)) for n in names])


@settings(max_examples=60, deadline=None)
@given(manifests())
def test_statement_round_trip_files(manifest: Any) -> None:
    statement = statement_for_manifest(manifest, "m")
    assert manifest_from_statement(statement) == manifest


@settings(max_examples=40, deadline=None)
@given(manifests("shards"))
def test_statement_round_trip_shards(manifest: Any) -> None:
    statement = statement_for_manifest(manifest, "m")
    assert statement["predicate"]["serialization"]["shard_size"] == 1_000_000_000
    assert manifest_from_statement(statement) == manifest


@settings(max_examples=60, deadline=None)
@given(manifests())
def test_subject_digest_is_sha256_of_concatenated_raw_digests(manifest: Any) -> None:
    statement = statement_for_manifest(manifest, "m")
    raw = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert subject_digest(manifest.resources) == hashlib.sha256(raw).hexdigest()


@settings(max_examples=60, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=12, unique=True))
def test_order_is_the_reference_implementations(names: list[str]) -> None:
    # model-signing sorts PurePosixPath keys (by path components).
    ours = sorted(names, key=lambda n: resource_sort_key(n, "files"))
    assert ours == [str(p) for p in sorted(pathlib.PurePosixPath(n) for n in names)]


def test_order_shards_numeric_offsets() -> None:
    names = ["w:1000:2000", "w:0:1000", "w:10000:10001", "w:2000:10000"]
    assert sorted(names, key=lambda n: resource_sort_key(n, "shards")) == [
        "w:0:1000",
        "w:1000:2000",
        "w:2000:10000",
        "w:10000:10001",
    ]


def _statement() -> dict[str, Any]:
    manifest = make_manifest(
        Serialization(), [Resource("a", "sha256", "11" * 32), Resource("b", "sha256", "22" * 32)]
    )
    return statement_for_manifest(manifest, "m")


def test_resources_in_any_order_verify_with_the_listed_order() -> None:
    statement = _statement()
    statement["predicate"]["resources"].reverse()
    raw = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(raw).hexdigest()
    assert [r.name for r in manifest_from_statement(statement).resources] == ["a", "b"]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s["subject"][0]["digest"].update(sha256="00" * 32), "subject[0].digest.sha256"),
        (lambda s: s["subject"].append(s["subject"][0]), "subject"),
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "predicateType"),
        (lambda s: s["predicate"].pop("serialization"), "predicate.serialization"),
        (lambda s: s["predicate"]["serialization"].update(method="zip"), "predicate.serialization.method"),
        (
            lambda s: s["predicate"]["serialization"].update(hash_type="md5"),
            "predicate.serialization.hash_type",
        ),
        (lambda s: s["predicate"]["resources"][0].update(digest="zz"), "predicate.resources[0].digest"),
        (lambda s: s["predicate"]["resources"][1].update(digest="22" * 31), "predicate.resources[1].digest"),
        (
            lambda s: s["predicate"]["resources"][0].update(algorithm="md5"),
            "predicate.resources[0].algorithm",
        ),
        (lambda s: s["predicate"]["resources"][0].pop("name"), "predicate.resources[0].name"),
        (lambda s: s["predicate"].update(resources={}), "predicate.resources"),
    ],
)
def test_malformed_statement_names_the_field(edit: Any, field: str) -> None:
    statement = copy.deepcopy(_statement())
    edit(statement)
    with pytest.raises(BundleFormatError) as info:
        manifest_from_statement(statement)
    assert info.value.field == field
    assert field in str(info.value)


def test_duplicate_resource_names_refused() -> None:
    statement = _statement()
    statement["predicate"]["resources"][1]["name"] = "a"
    raw = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(raw).hexdigest()
    with pytest.raises(BundleFormatError, match="duplicate resource name 'a'"):
        manifest_from_statement(statement)


def test_reference_float_shard_size_is_read() -> None:
    manifest = make_manifest(
        Serialization(method="shards", shard_size=8), [Resource("w:0:8", "sha256-sharded-8", "11" * 32)]
    )
    statement = statement_for_manifest(manifest, "m")
    statement["predicate"]["serialization"]["shard_size"] = 8.0  # as model-signing 1.1.1 writes it
    assert manifest_from_statement(statement).serialization.shard_size == 8
    statement["predicate"]["serialization"]["shard_size"] = 8.5
    with pytest.raises(BundleFormatError, match="shard_size"):
        manifest_from_statement(statement)


def test_written_statement_is_v1_never_legacy() -> None:
    statement = _statement()
    assert statement["predicateType"] == OMS_PREDICATE_TYPE
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitignore", ".gitattributes", ".github"],
    }


def test_legacy_v02_statement_is_read() -> None:
    legacy = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "weights.bin", "digest": {"sha256": "aa" * 32}},
            {"name": "config.json", "digest": {"sha256": "bb" * 32}},
        ],
        "predicateType": LEGACY_PREDICATE_TYPE,
        "predicate": {},
    }
    manifest = manifest_from_statement(legacy)
    assert manifest.serialization.method == "files"
    assert [(r.name, r.digest) for r in manifest.resources] == [
        ("config.json", "bb" * 32),
        ("weights.bin", "aa" * 32),
    ]


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(_segment, _digest, min_size=1, max_size=10),
    st.sets(_segment, max_size=4),
    st.data(),
)
def test_compare_manifests_reports_exactly_what_differs(
    files: dict[str, str], new: set[str], data: st.DataObject
) -> None:
    from guard.errors import IntegrityError
    from guard.signing.manifest import compare_manifests

    names = sorted(files)
    removed = set(data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))))
    kept = [n for n in names if n not in removed]
    changed = (
        set(data.draw(st.lists(st.sampled_from(kept), unique=True, max_size=len(kept)))) if kept else set()
    )
    added = new - set(names)
    actual = {n: ("ff" * 32 if n in changed and files[n] != "ff" * 32 else files[n]) for n in kept}
    changed = {n for n in changed if actual[n] != files[n]}
    actual.update({n: "00" * 32 for n in added})
    ser = Serialization()
    expected_m = make_manifest(ser, [Resource(n, "sha256", d) for n, d in files.items()])
    actual_m = make_manifest(ser, [Resource(n, "sha256", d) for n, d in actual.items()])
    if not (added or removed or changed):
        compare_manifests(expected_m, actual_m)
        return
    with pytest.raises(IntegrityError) as info:
        compare_manifests(expected_m, actual_m)
    assert set(info.value.added) == added
    assert set(info.value.removed) == removed
    assert set(info.value.changed) == changed
