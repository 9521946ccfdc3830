"""guard installed for real: the sdist and wheel built by ``python -m build`` (the wheel from the
sdist, so the sdist carries what a build needs), installed without the test extra into a fresh
venv (no system site-packages, no PYTHONPATH, not editable) from a wheelhouse of the image's pinned
versions (``pip wheel -c image/constraints.txt``, as ``make image``; the install itself is offline:
``--no-index``), then every command's ``--help`` and the commands a user runs first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    home: Path

    @property
    def site_packages(self) -> Path:
        return (
            self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        )

    def run(
        self, *argv: str, cwd: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = _clean_env()
        env.update(HOME=str(self.home), COLUMNS="80", NO_COLOR="1")
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=cwd or self.home,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (this checkout, whose egg-info pip would take for an installed guard), no pip
    settings of this machine, no virtualenv of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}


def _call(argv: list[str], what: str, *, clean: bool = False) -> None:
    env = _clean_env() if clean else None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert done.returncode == 0, (
        f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    pytest.importorskip("build", reason="the test extra's `build` (python -m build) is not installed")
    tmp = tmp_path_factory.mktemp("install")
    dist = tmp / "dist"
    _call([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], "python -m build")
    (sdist,) = dist.glob("cnai_guard-*.tar.gz")
    (wheel,) = dist.glob("cnai_guard-*.whl")
    wheelhouse = tmp / "wheelhouse"
    _call(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--constraint",
            str(ROOT / "image/constraints.txt"),
            "--wheel-dir",
            str(wheelhouse),
            str(wheel),
        ],
        "pip wheel (the runtime dependencies at the image's versions)",
    )
    venv = tmp / "venv"
    _call([sys.executable, "-m", "venv", str(venv)], "python -m venv", clean=True)
    _call(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "--isolated",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            str(wheel),
        ],
        "pip install --no-index (offline) of the wheel, without the test extra",
        clean=True,
    )
    home = tmp / "home"
    home.mkdir()
    return Installed(sdist, wheel, venv, home)


def test_the_sdist_and_wheel_carry_what_they_need(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for needed in (
        "README.md",
        "LICENSE",
        "pyproject.toml",
        "setup.py",
        "MANIFEST.in",
        "policies/README.md",
        "policies/input.schema.json",
        "policies/tenancy/isolation.rego",
        "attestations/slsa-provenance/v1/schema.json",
    ):
        assert needed in names, f"the sdist lacks {needed}"
    assert not [n for n in names if n.startswith("guard/testing/")]
    wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    source_policies = {p.relative_to(ROOT).as_posix() for p in (ROOT / "policies").rglob("*") if p.is_file()}
    shipped = {n.removeprefix("guard/data/") for n in wheel if n.startswith("guard/data/policies/")}
    assert shipped == source_policies, (
        "the wheel's policy library is not policies/ (tests and samples included)"
    )
    assert "guard/data/attestations/slsa-provenance/v1/schema.json" in wheel
    assert "guard/policy/library_reads.json" in wheel, "the kept read analysis is not in the wheel"
    assert not [n for n in wheel if n.startswith("guard/testing/")], "test doubles shipped in the wheel"


def test_it_runs_from_site_packages_without_the_test_extra(installed: Installed) -> None:
    probe = (
        "import importlib.util, guard, sys; print(guard.__file__); "
        "print([m for m in ('guard.testing', 'model_signing', 'OpenSSL', 'fastapi', 'pytest') "
        "if importlib.util.find_spec(m)])"
    )
    out = installed.run("python", "-c", probe).stdout.splitlines()
    assert out[0] == str(installed.site_packages / "guard/__init__.py"), out
    assert out[1] == "[]", f"installed without the test extra, yet importable: {out[1]}"


def test_the_installed_library_is_read_from_its_kept_analysis(installed: Installed) -> None:
    """The key of the shipped library's read analysis (guard.policy.kept_reads) is the same once
    installed: the policies read from guard/data/policies, regorus at the image's version."""
    probe = (
        "from guard.config import GuardConfig; from guard.policy import kept_reads; "
        "from guard.policy.cache import VOLATILE; from guard.policy.engine import make_engine; "
        "engine = make_engine(GuardConfig().policy); "
        "print(kept_reads.lookup(engine.texts, VOLATILE) is not None, engine.template_cache is not None)"
    )
    done = installed.run("python", "-c", probe)
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr


def test_every_command_helps(installed: Installed, command_paths: list[list[str]]) -> None:
    commands = command_paths
    assert len(commands) > 15
    for argv in commands:
        done = installed.run("guard", *argv, "--help")
        assert done.returncode == 0 and "Usage:" in done.stdout, (argv, done.stdout, done.stderr)


def test_version_and_the_shipped_policy_library(installed: Installed) -> None:
    done = installed.run("guard", "version")
    assert done.returncode == 0 and VERSION in done.stdout, done
    done = installed.run("guard", "policy", "test", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["library"] == str(installed.site_packages / "guard/data/policies")
    assert report["failed"] == 0 and report["passed"] > 100  # the Rego tests and every sample replayed


def test_the_quick_start_by_hand(installed: Installed) -> None:
    """docs/getting-started/quick-start.md, "The same by hand", run as written."""
    work = installed.home / "quick"
    model = work / "my-model"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}\n')
    (model / "model.safetensors").write_bytes(b"\0" * 1024)
    steps = [
        (["guard", "keygen", "--out", "keys/"], 0),
        (["guard", "sign", "./my-model", "--key", "keys/signing-key.pem"], 0),
        (["guard", "verify", "./my-model", "--key", "keys/signing-key.pub.pem"], 0),
    ]
    for argv, code in steps:
        done = installed.run(*argv, cwd=work)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
    assert (model / "model.sig").is_file()
    with (model / "config.json").open("a") as f:
        f.write("tampered\n")
    done = installed.run("guard", "verify", "./my-model", "--key", "keys/signing-key.pub.pem", cwd=work)
    assert done.returncode == 1 and "config.json" in done.stdout + done.stderr, done


def test_check_offline_on_a_manifest(installed: Installed) -> None:
    work = installed.home / "check"
    work.mkdir()
    assert installed.run("guard", "keygen", "--out", "keys", "--name", "k", cwd=work).returncode == 0
    (work / "guard.yaml").write_text(
        "authorities:\n  k: {kind: key, key: keys/k.pub.pem}\n"
        "rules:\n  - name: apps\n    artifacts: ['registry.example.com/**']\n    authorities: [k]\n"
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tagged, namespace: ml}\n"
        "spec:\n  containers:\n  - {name: app, image: 'registry.example.com/team/app:1.0'}\n"
    )
    (work / "pod.yaml").write_text(pod)
    done = installed.run("guard", "check", "-f", "pod.yaml", "--offline", "--config", "guard.yaml", cwd=work)
    assert done.returncode == 1 and "mutable_tags" in done.stdout, done
    done = installed.run(
        "guard",
        "check",
        "-f",
        "-",
        "--offline",
        "--config",
        "guard.yaml",
        cwd=work,
        stdin=pod.replace(":1.0'", "@sha256:" + "0" * 64 + "'"),
    )
    assert done.returncode == 0, done


def test_the_demo_runs_from_the_wheel(installed: Installed) -> None:
    """The wheel lacks guard.testing (the registry fixture): the demo reads its models from a local
    OCI layout mirror instead, every section still shows a real result, and its final line says so."""
    done = installed.run("guard", "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = done.stdout.strip().splitlines()[-1]
    assert final.startswith("demo complete: every step behaved as shown"), final
    assert "local OCI layout mirror" in final and "is not installed" in final, final
