"""Issue 9 item 8 at every parse: 100,000 nested ``[`` (which makes ``json.loads`` raise
``RecursionError``, escaping every ``except ValueError``) given to each reader of JSON someone
else wrote. Each must answer with guard's own error (the exit code of its kind), never a
traceback. One row per place; the table grows with every new reader."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.cli import run
from guard.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    BundleFormatError,
    ConfigError,
    GuardError,
    UntrustedContentError,
    UsageError,
)
from guard.oci.types import MODELPACK_FILE_METADATA, Descriptor

DEEP = 100_000
NESTED = b"[" * DEEP + b"]" * DEEP
NESTED_OBJECT = b'{"a":' + NESTED + b"}"
DIGEST = "sha256:" + "0" * 64


def _bundle(tmp_path: Path) -> Any:
    from guard.signing.bundle import parse_bundle

    return parse_bundle(NESTED)


def _statement(tmp_path: Path) -> Any:
    from guard.signing.bundle import parse_statement

    return parse_statement(NESTED_OBJECT)


def _predicate(tmp_path: Path) -> Any:
    from guard.attest.sign import load_predicate

    (tmp_path / "p.json").write_bytes(NESTED_OBJECT)
    return load_predicate(tmp_path / "p.json")


def _model_config(tmp_path: Path) -> Any:
    from guard.attest.modelcard import read_config

    (tmp_path / "config.json").write_bytes(NESTED_OBJECT)
    return read_config(tmp_path)


def _safetensors(tmp_path: Path) -> Any:
    from guard.attest.modelcard import safetensors_header

    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(NESTED_OBJECT)) + NESTED_OBJECT)
    return safetensors_header(path)


def _trust_config(tmp_path: Path) -> Any:
    from guard.signing.sigstore_trust import load_client_trust_config

    (tmp_path / "trust.json").write_bytes(NESTED_OBJECT)
    return load_client_trust_config(tmp_path / "trust.json")


def _layout(tmp_path: Path, what: str) -> Any:
    from guard.oci.layout import LayoutStore

    store = LayoutStore(tmp_path / "layout", create=True)
    if what == "index":
        (tmp_path / "layout" / "index.json").write_bytes(NESTED_OBJECT)
        return store.resolve("v1")
    import hashlib

    digest = "sha256:" + hashlib.sha256(NESTED_OBJECT).hexdigest()
    (tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(NESTED_OBJECT)
    return store.fetch_manifest(digest)


def _review(tmp_path: Path) -> Any:
    from guard.admission.review import parse_review
    from guard.testing.admission import admission_review, pod

    # 150 levels inside the object: pydantic-core (limit ~200) reads it, the policy engine's
    # reader (limit 128) would not; refused at the edge
    obj = pod("registry.local/models/m:v1")
    obj["metadata"]["labels"] = {"x": json.loads("[" * 150 + "]" * 150)}
    return parse_review(json.dumps(admission_review(obj)).encode())


def _review_100k(tmp_path: Path) -> Any:
    from guard.admission.review import parse_review
    from guard.testing.admission import admission_review, pod

    body = json.dumps(admission_review(pod("registry.local/models/m:v1"))).encode()
    assert b'"spec": ' in body
    return parse_review(body.replace(b'"spec": ', b'"x": ' + NESTED + b', "spec": ', 1))


PLACES: list[tuple[str, Callable[[Path], Any], type[GuardError]]] = [
    ("sigstore bundle", _bundle, BundleFormatError),
    ("dsse statement", _statement, BundleFormatError),
    ("predicate file", _predicate, UsageError),
    ("model config.json", _model_config, UsageError),
    ("safetensors header", _safetensors, UsageError),
    ("sigstore trust config", _trust_config, ConfigError),
    ("oci layout index.json", lambda p: _layout(p, "index"), UntrustedContentError),
    ("oci layout manifest blob", lambda p: _layout(p, "manifest"), UntrustedContentError),
    ("admission review, 150 levels", _review, UsageError),
    ("admission review, 100,000 levels", _review_100k, UsageError),
]


@pytest.mark.parametrize(("reader", "error"), [(r, e) for _, r, e in PLACES], ids=[n for n, _, _ in PLACES])
def test_nested_json_is_guards_error(
    reader: Callable[[Path], Any], error: type[GuardError], tmp_path: Path
) -> None:
    with pytest.raises(error, match="nested at most"):
        reader(tmp_path)


def test_modelpack_file_metadata_annotation() -> None:
    from guard.oci.modelpack import layer_is_executable

    layer = Descriptor(
        "application/vnd.cncf.model.weight.v1.raw",
        DIGEST,
        1,
        annotations={MODELPACK_FILE_METADATA: NESTED.decode()},
    )
    assert layer_is_executable(layer) is False


def test_sign_refuses_to_replace_a_nested_file(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.signing.keys import generate_keypair

    keys = generate_keypair(tmp_path / "keys")
    target = tmp_path / "out.sig"
    target.write_bytes(NESTED)
    assert (
        run(["sign", str(model_dir), "--key", str(keys.private_key), "--signature", str(target)])
        == EXIT_USAGE
    )
    assert "refusing to replace" in capsys.readouterr().err
    assert target.read_bytes() == NESTED


def test_verify_with_a_nested_signature_is_exit_1(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.signing.keys import generate_keypair

    keys = generate_keypair(tmp_path / "keys")
    (model_dir / "model.sig").write_bytes(NESTED)
    assert run(["verify", str(model_dir), "--key", str(keys.public_key)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "nested at most" in err and "Traceback" not in err


def test_sbom_output_over_a_nested_file_is_refused(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bom.json"
    out.write_bytes(NESTED)
    assert run(["sbom", str(model_dir), "-o", str(out)]) == EXIT_USAGE
    assert "refusing to replace" in capsys.readouterr().err
    assert out.read_bytes() == NESTED


def test_policy_eval_with_nested_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(NESTED_OBJECT)
    assert run(["policy", "eval", "--input", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"--input: {path}: expected JSON nested at most" in err and "Traceback" not in err


def test_oci_layout_with_a_nested_index_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from guard.oci.layout import LayoutStore

    LayoutStore(tmp_path / "layout", create=True)
    (tmp_path / "layout" / "index.json").write_bytes(NESTED_OBJECT)
    assert run(["discover", f"oci-layout:{tmp_path / 'layout'}:v1"]) == EXIT_FAILED
    assert "nested at most" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--signature", "--attestation"])
def test_attach_a_nested_file_is_exit_2(
    option: str, tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    store = f"oci-layout:{tmp_path / 'store'}:v1"
    assert run(["push", str(model_dir), store]) == 0
    path = tmp_path / "attachment.json"
    if option == "--signature":
        path.write_bytes(NESTED)
    else:  # a DSSE envelope whose payload nests 100,000 levels
        payload = base64.b64encode(NESTED).decode()
        path.write_text(
            json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": []})
        )
    assert run(["attach", store, option, str(path)]) == EXIT_USAGE
    assert "nested at most" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        (b'{"a": "[[[[{{{{"}', 1),  # brackets inside a string do not count (no escape: the split)
        (b'{"a\\"[[": "x\\\\", "b": [["\\"]]"]]}', 3),  # escaped quotes: the scan
        (b'["\\\\"' + b"[" * 80 + b"]" * 80 + b"]", 81),  # an escaped backslash ends the string
        (b'"' + b"[" * 100, 0),  # an unterminated string hides what follows
        (b"[" * 70 + b'"\\', 70),  # a trailing lone backslash
    ],
)
def test_nesting_depth_outside_strings(document: bytes, depth: int) -> None:
    from guard.untrusted import nesting_depth

    assert nesting_depth(document) == depth


# the scan the split replaced: a string is a quote, then escapes or other bytes, to the next quote
# no backslash escapes (or to the end)
_STRING_SCAN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)


def test_strings_are_found_as_the_scan_finds_them_in_any_json() -> None:
    """Random documents whose keys and strings are made of quotes, backslashes, brackets and
    escapes (in runs of any length): what is left outside the strings is what the scan leaves, and
    the depth is the document's."""
    import random

    from guard.untrusted import _outside_strings, nesting_depth

    rng = random.Random(16)
    alphabet = ['"', "\\", "[", "]", "{", "}", "a", "\\\\", '\\"', "\u00e9", "\n", "/"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))

    def tree(depth: int) -> object:
        if depth == 0 or rng.random() < 0.3:
            return text()
        items = [tree(depth - 1) for _ in range(rng.randrange(0, 4))]
        return items if rng.random() < 0.5 else {text(): v for v in items}

    def depth_of(value: object) -> int:
        if isinstance(value, list):
            return 1 + max(map(depth_of, value), default=0)
        if isinstance(value, dict):
            return 1 + max(map(depth_of, value.values()), default=0)
        return 0

    for _ in range(3000):
        value = tree(rng.randrange(0, 9))
        document = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        assert _outside_strings(document) == _STRING_SCAN.sub(b"", document), document
        assert nesting_depth(document) == depth_of(value), document
