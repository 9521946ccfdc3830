"""`oci-layout:PATH` mistakes are usage errors (exit 2) with a message that says which mistake:
no such directory, a directory that is not a layout, a file, a tag or digest the layout lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.cli import run
from guard.errors import EXIT_USAGE, LayoutNotFoundError, NotFoundError, UsageError
from guard.oci.layout import LISTED_TAGS, LayoutStore

MISSING = "sha256:" + "0" * 64


@pytest.fixture
def layout(tmp_path: Path, model_dir: Path) -> Path:
    store = tmp_path / "store"
    for tag in ("v1", "v2"):
        assert run(["push", str(model_dir), f"oci-layout:{store}:{tag}"]) == 0
    return store


@pytest.mark.parametrize("command", ["discover", "pull", "attach"])
def test_a_layout_that_does_not_exist_is_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"oci-layout:{tmp_path / 'nostore'}:v1"
    argv = {
        "discover": ["discover", target],
        "pull": ["pull", target, str(tmp_path / "out")],
        "attach": ["attach", target, "--sbom", str(tmp_path / "sbom.json")],
    }[command]
    if command == "attach":
        (tmp_path / "sbom.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6"}')
    assert run(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"oci-layout:{tmp_path / 'nostore'}: no such directory" in err
    assert not (tmp_path / "out").exists()


def test_a_directory_that_is_not_a_layout_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m").mkdir()
    assert run(["discover", f"oci-layout:{tmp_path / 'm'}"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a directory but not an OCI image layout (no oci-layout file)" in err
    assert "no such directory" not in err


def test_a_file_is_not_a_layout(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert run(["push", str(model_dir), f"oci-layout:{tmp_path / 'f'}:v1"]) == EXIT_USAGE
    assert "expected a directory (an OCI image layout), found a file" in capsys.readouterr().err
    with pytest.raises(UsageError):
        LayoutStore(tmp_path / "f")


def test_a_missing_tag_is_exit_2_and_lists_the_tags(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["discover", f"oci-layout:{layout}:nope"]) == EXIT_USAGE
    assert f"oci-layout:{layout}: no tag 'nope'; its tags: v1, v2" in capsys.readouterr().err


def test_a_missing_digest_is_exit_2(layout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["pull", f"oci-layout:{layout}@{MISSING}", str(tmp_path / "out")]) == EXIT_USAGE
    assert f"oci-layout:{layout}@{MISSING}: no such manifest in the layout" in capsys.readouterr().err


def test_many_tags_are_counted_not_all_listed(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "s", create=True)
    for i in range(LISTED_TAGS + 2):
        store.push_manifest(b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}', "m", f"t{i:02d}")
    with pytest.raises(LayoutNotFoundError, match=rf"has {LISTED_TAGS + 2} tags, e\.g\. t00, t01") as info:
        store.resolve("nope")
    assert f"t{LISTED_TAGS + 1:02d}" not in str(info.value)


def test_a_missing_tag_is_still_a_not_found_for_probing_code(tmp_path: Path) -> None:
    """Optional lookups (cosign legacy tags, the referrers fallback index) catch NotFoundError."""
    store = LayoutStore(tmp_path / "s", create=True)
    with pytest.raises(NotFoundError, match="the layout has no tags"):
        store.resolve("sha256-abc.sig")


def test_a_layout_file_that_cannot_be_read_is_a_usage_error_naming_it(
    layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the layout's own files (a mirror's, or one given on the command line): a mistake in the
    # setup, so never a registry outage that a fail-open rule would let through
    store = LayoutStore(layout)
    manifest = store.resolve("v1").digest
    blob = layout / "blobs" / "sha256" / manifest.split(":", 1)[1]
    blob.unlink()
    blob.mkdir()  # read as root too: a directory where the manifest's blob should be
    with pytest.raises(UsageError, match=r"the manifest's blob cannot be read: Is a directory"):
        store.fetch_manifest(manifest)
    with (
        pytest.raises(UsageError, match=r"blob sha256:\w+ cannot be read: Is a directory"),
        store.fetch_blob(manifest),
    ):
        pass
    (layout / "index.json").unlink()
    (layout / "index.json").mkdir()
    with pytest.raises(UsageError, match=r"index\.json cannot be read: Is a directory"):
        LayoutStore(layout).resolve("v1")
    assert run(["discover", f"oci-layout:{layout}:v1"]) == EXIT_USAGE
    assert "index.json cannot be read" in capsys.readouterr().err
