"""What the common commands import: the CLI's start-up stays free of the heavy libraries a command
does not need (module presence in a fresh process, never a time), and the deferred names of
typer's help renderer (guard._deferred) still work when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from guard.cli import run

HEAVY = (
    "sigstore", "cryptography", "jsonschema", "pydantic", "requests", "urllib3", "yaml",
    "rich.markdown", "rich.traceback", "markdown_it", "pygments", "rfc3987_syntax",
)  # fmt: skip


def _fresh(argv: list[str] | None, after: str = "", watched: tuple[str, ...] = HEAVY) -> dict[str, object]:
    """Run ``guard ARGV`` (None: only ``import guard.cli``) in a fresh process: its exit code,
    the ``watched`` modules it imported, whether guard left a hook on sys.meta_path; ``after``
    runs then."""
    code = (
        "import contextlib, io, json, sys\nhooks = list(sys.meta_path)\nfrom guard.cli import run\n"
        f"argv = {argv!r}\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    code = None if argv is None else run(argv)\n"
        f"heavy = [m for m in {watched!r} if m in sys.modules]\n"
        "hook = [type(h).__module__ for h in sys.meta_path if h not in hooks]\n"
        f"{after}\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'hooks': hook, 'after': locals().get('found')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-file model signed with a fresh key: (model directory, public key)."""
    tmp = tmp_path_factory.mktemp("lazy")
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["Tiny"]}\n')
    assert run(["keygen", "--out", str(tmp / "keys"), "--name", "k"]) == 0
    assert run(["sign", str(model), "--key", str(tmp / "keys" / "k.pem")]) == 0
    return model, tmp / "keys" / "k.pub.pem"


def test_importing_the_cli_imports_nothing_heavy() -> None:
    assert _fresh(None) == {"code": None, "heavy": [], "hooks": [], "after": None}


@pytest.mark.parametrize("argv", [["--help"], ["verify", "--help"], ["sign", "--help"], ["push", "--help"]])
def test_a_help_page_imports_nothing_heavy(argv: list[str]) -> None:
    found = _fresh(argv)
    assert found["code"] == 0
    assert found["heavy"] == [] and found["hooks"] == []
    # nor the signing types (its seven dataclasses cost ~1 ms each to define): the options' module
    # names them in annotations only
    assert _fresh(argv, watched=("guard.signing.types",))["heavy"] == []


def test_verifying_a_model_with_a_key_imports_only_cryptography(signed: tuple[Path, Path]) -> None:
    model, key = signed
    found = _fresh(["verify", str(model), "--key", str(key)])
    assert found["code"] == 0  # verified
    assert found["heavy"] == ["cryptography"] and found["hooks"] == []


def test_signing_a_model_with_a_key_imports_only_cryptography(tmp_path: Path) -> None:
    """`guard sign DIR --key KEY --no-cache` (the end-to-end hashing benchmark's command): of the
    heavy libraries only cryptography, and nothing a sha256 signature of an OMS statement without
    the digest cache does not use: no sqlite3 (the cache), blake3 (another algorithm), rfc8785
    (statements of plain JSON are written by json), rich (no terminal: no progress bar)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\0" * 1024)
    assert run(["keygen", "--out", str(tmp_path / "keys"), "--name", "k"]) == 0
    key, signature = tmp_path / "keys" / "k.pem", tmp_path / "model.sig"
    argv = ["sign", str(model), "--key", str(key), "--signature", str(signature), "--no-cache"]
    found = _fresh(argv, watched=(*HEAVY, "sqlite3", "blake3", "rfc8785", "rich"))
    assert found["code"] == 0 and signature.is_file()
    assert found["heavy"] == ["cryptography"] and found["hooks"] == []
    assert (
        run(
            [
                "verify",
                str(model),
                "--key",
                str(tmp_path / "keys" / "k.pub.pem"),
                "--signature",
                str(signature),
            ]
        )
        == 0
    )


def test_the_program_freezes_what_importing_the_cli_loaded() -> None:
    """``guard`` (guard.cli.main) moves what importing the CLI loaded out of the collector's sight
    before the command runs (a count of objects, not a time), and exits with the command's code;
    what the command makes is not frozen."""
    code = (
        "import gc\nimport guard.cli as cli\n"
        "def run():\n    made = [[]]\n    made.append(made)\n    del made\n"
        "    print(gc.get_freeze_count(), gc.collect())\n    return 3\n"
        "cli.run = run\ncli.main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 3, done.stderr
    frozen, collected = (int(n) for n in done.stdout.split())
    assert frozen > 1000  # typer, click and guard.cli's modules, classes and functions
    assert collected >= 2  # the cycle the command left: its garbage is still collected


def test_the_help_renderers_deferred_names_load_the_real_ones() -> None:
    """After a help page, typer's renderer has stand-ins for Markdown and Traceback: used, they
    are rich's own (a class whose instances are rich.markdown.Markdown, a classmethod that works)."""
    after = (
        "import typer.rich_utils as r\n"
        "md = r.Markdown('# title')\n"
        "import rich.markdown, rich.traceback\n"
        "try:\n    raise ValueError('x')\nexcept ValueError as e:\n"
        "    tb = r.Traceback.from_exception(type(e), e, e.__traceback__)\n"
        "text = r._make_rich_text(text='**bold**', markup_mode='markdown')\n"
        "found = [type(md) is rich.markdown.Markdown, type(tb) is rich.traceback.Traceback,\n"
        "         type(text) is rich.markdown.Markdown, type(sys.modules['rich.markdown']).__name__]"
    )
    found = _fresh(["--help"], after)
    assert found["heavy"] == []  # before they were used
    assert found["after"] == [True, True, True, "module"]
