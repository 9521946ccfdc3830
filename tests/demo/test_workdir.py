"""`guard demo --workdir DIR` can be given again; a directory of someone else's files is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.demo.run import MARKER, prepare_workdir
from guard.errors import UsageError


def test_a_demo_directory_is_emptied_for_the_next_run(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    prepare_workdir(workdir)
    (workdir / "keys").mkdir()
    (workdir / "keys" / "demo-key.pem").write_text("x")
    (workdir / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").write_text("kept")
    prepare_workdir(workdir)
    assert sorted(p.name for p in workdir.iterdir()) == [MARKER]
    assert (tmp_path / "outside").read_text() == "kept"  # a symlink is removed, not followed


def test_other_files_are_never_deleted(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UsageError, match="found other files"):
        prepare_workdir(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"
    with pytest.raises(UsageError, match="found a file"):
        prepare_workdir(tmp_path / "mine.txt")
