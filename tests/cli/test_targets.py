"""Pod-spec references are read where oci:// is, with the webhook's grammar; paths stay paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.commands import targets
from guard.errors import UsageError
from guard.oci import reference

DIGEST = "sha256:" + "a" * 64


def test_schemes_are_the_parsers() -> None:
    assert targets.REGISTRY_SCHEME == reference.REGISTRY_SCHEME
    assert targets.LAYOUT_SCHEME == reference.LAYOUT_SCHEME


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example.com/team/m:v1", "oci://registry.example.com/team/m:v1"),
        ("Registry.Example.COM:443/team/m:v1", "oci://registry.example.com/team/m:v1"),
        ("nginx:1.25", "oci://docker.io/library/nginx:1.25"),
        (f"repo@{DIGEST}", f"oci://docker.io/library/repo@{DIGEST}"),
        ("localhost:5000/a/b", "oci://localhost:5000/a/b:latest"),
        ("oci://registry.example.com/a:v1", "oci://registry.example.com/a:v1"),
        ("oci-layout:dir:v1", "oci-layout:dir:v1"),
        ("models/llama", "models/llama"),  # no host, no tag, no digest: a path
        ("./registry.example.com/x:1", "./registry.example.com/x:1"),
    ],
)
def test_artifact_target(text: str, expected: str) -> None:
    assert targets.artifact_target(text) == expected
    if expected.startswith("oci://") and text != expected:  # the webhook reads it the same
        assert reference.parse_reference(expected).image() == reference.parse_image_reference(text).image()


def test_an_existing_path_is_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model:v1").mkdir()
    assert targets.artifact_target("model:v1") == "model:v1"


def test_a_bad_reference_says_what_was_expected() -> None:
    with pytest.raises(UsageError, match="invalid repository"):
        targets.artifact_target("registry.example.com/Team/m:v1")
