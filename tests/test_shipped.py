"""policies/ and attestations/ exist once: a checkout reads the top-level directories, and the
source tree holds no copy under guard/data (the wheel build makes it: tests/install)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from guard.attest.specs import load_spec_file
from guard.policy.library import default_library_dir
from guard.shipped import installed_dir, shipped_dir

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_reads_the_top_level_directories() -> None:
    assert shipped_dir("policies") == ROOT / "policies" == default_library_dir()
    assert shipped_dir("attestations") == ROOT / "attestations"
    assert load_spec_file("slsa-provenance/v1")["$schema"].endswith("2020-12/schema")


def test_the_source_tree_tracks_no_copy() -> None:
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "guard/data"], capture_output=True, text=True, check=True
    ).stdout.split()
    for copy in (installed_dir("policies"), installed_dir("attestations")):
        prefix = copy.relative_to(ROOT).as_posix() + "/"
        assert not [f for f in tracked if f.startswith(prefix)], f"{prefix} is tracked: it must exist once"
