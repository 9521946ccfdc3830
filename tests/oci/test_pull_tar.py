"""Pulling artifacts with tar layers (KitOps ModelKits, packed ModelPack) from an OCI layout."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from guard.errors import IntegrityError, UnsafeArtifactError, UsageError
from guard.oci.layout import LayoutStore
from guard.oci.pull import pull
from guard.oci.push import push_bytes
from guard.oci.reference import parse_reference
from guard.oci.types import KITOPS_ARTIFACT, KITOPS_CONFIG, OCI_MANIFEST, sha256_digest


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def _kit(store: LayoutStore, layers: list[tuple[str, bytes]], tag: str = "kit") -> str:
    config = json.dumps({"manifestVersion": "1.0.0", "package": {"name": "kit"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": KITOPS_ARTIFACT,
        "config": {"mediaType": KITOPS_CONFIG, "digest": push_bytes(store, config), "size": len(config)},
        "layers": [
            {"mediaType": media_type, "digest": push_bytes(store, data), "size": len(data)}
            for media_type, data in layers
        ],
    }
    return str(store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, tag).digest)


def test_kitops_modelkit_with_gzip_and_plain_tar_layers(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "layout", create=True)
    model = _tar([("models/weights.bin", b"\x00" * 1000)], gz=True)
    docs = _tar([("docs/README.md", b"# kit\n")], gz=False)
    _kit(
        store,
        [
            ("application/vnd.kitops.modelkit.model.v1.tar+gzip", model),
            ("application/vnd.kitops.modelkit.docs.v1.tar", docs),
        ],
    )
    result = pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit"), tmp_path / "out")
    assert result.kind == "kitops"
    assert (tmp_path / "out" / "models" / "weights.bin").read_bytes() == b"\x00" * 1000
    assert (tmp_path / "out" / "docs" / "README.md").read_text() == "# kit\n"


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "escape", "absolute"])
def test_tar_entries_that_could_escape_are_refused(tmp_path: Path, kind: str) -> None:
    store = LayoutStore(tmp_path / "layout", create=True)
    if kind in ("symlink", "hardlink"):
        link = tarfile.TarInfo("models/link")
        link.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        link.linkname = "/etc/passwd"
        entries: list[tarfile.TarInfo | tuple[str, bytes]] = [link]
    else:
        entries = [("../../evil" if kind == "escape" else "/tmp/evil", b"x")]
    _kit(store, [("application/vnd.kitops.modelkit.model.v1.tar", _tar(entries, gz=False))])
    with pytest.raises(UnsafeArtifactError):
        pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit"), tmp_path / "out")
    assert not (tmp_path / "evil").exists()
    assert not any((tmp_path / "out").rglob("*link*"))


def test_tampered_tar_layer_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "layout", create=True)
    data = _tar([("models/w.bin", b"A" * 4096)], gz=False)
    _kit(store, [("application/vnd.kitops.modelkit.model.v1.tar", data)])
    blob = tmp_path / "layout" / "blobs" / "sha256" / sha256_digest(data).split(":")[1]
    blob.write_bytes(data.replace(b"A" * 4096, b"B" * 4096))
    with pytest.raises(IntegrityError, match="do not match"):
        pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit"), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_layout_refuses_a_manifest_blob_that_does_not_match_its_digest(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "layout", create=True)
    digest = _kit(store, [])
    (tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(b'{"tampered": true}')
    with pytest.raises(IntegrityError, match="manifest blob"):
        store.fetch_manifest(digest)


def test_missing_layout_is_a_clear_error(tmp_path: Path) -> None:
    from guard.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no such directory"):
        LayoutStore(tmp_path / "nothing")


def test_zstd_tar_layer(tmp_path: Path) -> None:
    import zstandard

    store = LayoutStore(tmp_path / "layout", create=True)
    data = zstandard.ZstdCompressor().compress(_tar([("models/w.bin", b"Z" * 5000)], gz=False))
    _kit(store, [("application/vnd.kitops.modelkit.model.v1.tar+zstd", data)])
    pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit"), tmp_path / "out")
    assert (tmp_path / "out" / "models" / "w.bin").read_bytes() == b"Z" * 5000


def test_blob_longer_than_declared_is_cut_off(tmp_path: Path) -> None:
    from guard.oci.types import MODELPACK_ARTIFACT, MODELPACK_CONFIG

    store = LayoutStore(tmp_path / "layout", create=True)
    data = b"w" * 1000
    digest = push_bytes(store, data)
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODELPACK_ARTIFACT,
        "config": {"mediaType": MODELPACK_CONFIG, "digest": push_bytes(store, config), "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.cncf.model.weight.v1.raw",
                "digest": digest,
                "size": len(data),
                "annotations": {"org.cncf.model.filepath": "w.bin"},
            }
        ],
    }
    store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, "v1")
    (tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data + b"x" * (2 << 20))
    with pytest.raises(IntegrityError, match="more than the 1000 bytes"):
        pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:v1"), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_pull_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "layout", create=True)
    _kit(store, [("application/vnd.kitops.modelkit.model.v1.tar", _tar([("w.bin", b"weights")], gz=False))])
    ref = parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("left over from something else")
    with pytest.raises(UsageError, match=r"is not empty \(found stale.txt\).*--force"):
        pull(store, ref, out)
    assert sorted(p.name for p in out.iterdir()) == ["stale.txt"]  # nothing written
    result = pull(store, ref, out, force=True)
    assert result.files == ("w.bin",)
    assert (out / "w.bin").read_bytes() == b"weights"
    assert (out / "stale.txt").exists()  # --force replaces the artifact's files only


def test_cli_pull_into_a_non_empty_directory_is_exit_2_before_any_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.cli import run

    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    # The layout does not even exist: the target is checked first, so the error names the target.
    code = run(["pull", f"oci-layout:{tmp_path / 'missing'}:v1", str(out)])
    assert code == 2
    assert "is not empty (found x)" in capsys.readouterr().err


@pytest.mark.parametrize("gz", [False, True])
def test_tar_layer_of_several_chunks_is_restored_byte_for_byte(tmp_path: Path, gz: bool) -> None:
    # entries cross the 1 MiB chunks the layout streams, and tarfile's reads cross entries
    import os

    files = {"models/a.bin": os.urandom(1_500_000), "models/b.bin": os.urandom(2_100_003), "c.txt": b"c"}
    store = LayoutStore(tmp_path / "layout", create=True)
    suffix = ".tar+gzip" if gz else ".tar"
    _kit(store, [(f"application/vnd.kitops.modelkit.model.v1{suffix}", _tar(list(files.items()), gz=gz))])
    result = pull(store, parse_reference(f"oci-layout:{tmp_path / 'layout'}:kit"), tmp_path / "out")
    assert sorted(result.files) == sorted(files)
    for name, data in files.items():
        assert (tmp_path / "out" / name).read_bytes() == data
