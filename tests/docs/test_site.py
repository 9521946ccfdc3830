"""The docs site builds with --strict (broken links and missing pages fail) and its generated
reference pages are what the code generates now."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def test_generated_reference_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen" / "reference.py"), "--check"],
        capture_output=True, text=True, env=_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is in the test extra (pip install '.[test]')")
    pytest.importorskip("material", reason="mkdocs-material is in the test extra")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        capture_output=True, text=True, env=_env(), check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "guides" / "check" / "index.html").is_file()
    shutil.rmtree(tmp_path / "site")


def test_the_exit_codes_page_lists_every_code_of_guard_errors() -> None:
    import re

    from guard import errors

    codes = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    page = (ROOT / "docs" / "reference" / "exit-codes.md").read_text()
    rows = {int(m) for m in re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE)}
    assert rows == codes
