"""The CI workflow examples (docs/examples/workflows/*.yml, included in the signing guide) are
complete GitHub Actions workflows, and their `guard` steps work: each step whose script runs guard
is executed with bash as the runner would (``bash --noprofile --norc -eo pipefail``), its
``${{ ... }}`` expressions and ``env:`` filled in as GitHub would, in a checkout-like workspace,
offline: keyless against guard.testing.sigstore (the runner's OIDC token from its GitHub Actions
token endpoint), images against Debian's docker-registry with basic auth. Steps without guard
(pip install, the image build) are not run here; the test names them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.cli import run
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.signing.keys import generate_keypair
from guard.testing.registry import push_test_image
from guard.testing.sigstore import TestSigstore

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "docs" / "examples" / "workflows"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
GUARD_COMMAND = re.compile(r"(?m)(^|\|)\s*guard\s")
INSTALLS = (
    re.compile(r'pip install "cnai-guard @ git\+https://github\.com/cnai/guard@v\$\{GUARD_VERSION\}"'),
    re.compile(r"pip install \.$"),
    re.compile(r"pip install \S+/releases/download/\S+\.whl"),
)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW_REF = "acme/models/.github/workflows/sign-model-keyless.yml@refs/heads/main"
PASSPHRASE = "correct horse battery staple"


def load(name: str) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as a boolean
    return {("on" if key is True else str(key)): value for key, value in raw.items()}


def steps(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for job in doc["jobs"].values():
        yield from job["steps"]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_workflow_is_a_complete_github_actions_workflow(name: str) -> None:
    doc = load(name)
    assert isinstance(doc.get("name"), str) and doc["on"], f"{name}: name and on: are required"
    assert doc["permissions"]["id-token"] == "write" and doc["permissions"]["contents"] == "read"
    assert set(doc) <= {"name", "on", "permissions", "env", "jobs", "concurrency", "defaults"}
    ids: list[str] = []
    for job_name, job in doc["jobs"].items():
        assert isinstance(job["runs-on"], str), f"{name}: jobs.{job_name}.runs-on"
        assert set(job) <= {"runs-on", "steps", "env", "permissions", "needs", "if", "timeout-minutes"}
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step has exactly one of uses / run"
            assert set(step) <= {"name", "id", "uses", "with", "run", "env", "shell", "if"}, step
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
            if "id" in step:
                ids.append(step["id"])
            for value in [step.get("run", ""), *(step.get("env") or {}).values()]:
                for expression in EXPRESSION.findall(str(value)):
                    context = expression.split(".")
                    assert context[0] in ("secrets", "github") or (
                        context[0] == "steps" and context[1] in ids and context[2] == "outputs"
                    ), f"{name}: ${{{{ {expression} }}}} names no context available there"
    used = [s.get("uses", "") for s in steps(doc)]
    assert any(u.startswith("actions/checkout@") for u in used)
    setup = next(s for s in steps(doc) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"
    scripts = [str(s.get("run", "")) for s in steps(doc)]
    assert any(pattern.search(script) for script in scripts for pattern in INSTALLS), "no guard install step"
    for script in scripts:
        if 'SIGNING_KEY"' in script and ">" in script:  # a key written to disk is removed on exit
            assert script.index("trap 'rm -f") < script.index("printf '%s\\n' \"$SIGNING_KEY\"")


@dataclass
class Runner:
    """Runs a workflow's guard steps in ``workspace`` as the GitHub runner would."""

    tmp: Path
    expressions: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def workspace(self) -> Path:
        return self.tmp / "workspace"

    @property
    def runner_temp(self) -> Path:
        return self.tmp / "runner-temp"

    def fill(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.expressions[m.group(1)], text)

    def base_env(self) -> dict[str, str]:
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "guard"
        main = "from guard.cli import main; main()"
        shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -c "{main}" "$@"\n')
        shim.chmod(0o755)
        self.runner_temp.mkdir(exist_ok=True)
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
        return {
            **keep,
            "PATH": f"{bin_dir}{os.pathsep}{keep.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.tmp),
            "XDG_CACHE_HOME": str(self.tmp / "cache"),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(self.tmp / "github-output"),
            "GITHUB_ENV": str(self.tmp / "github-env"),
            "GITHUB_REF_NAME": "v0.1.0",
            "RUNNER_TEMP": str(self.runner_temp),
        }

    def run(self, doc: Mapping[str, Any]) -> dict[str, subprocess.CompletedProcess[str]]:
        results = {}
        env = {**self.base_env(), **{k: self.fill(str(v)) for k, v in (doc.get("env") or {}).items()}}
        for step in steps(doc):
            label = step.get("name") or step.get("uses") or step["run"][:40]
            if "run" not in step or not GUARD_COMMAND.search(step["run"]):
                self.skipped.append(label)
                continue
            script = self.tmp / "step.sh"
            script.write_text(self.fill(step["run"]))
            step_env = {k: self.fill(str(v)) for k, v in (step.get("env") or {}).items()}
            results[label] = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=self.workspace, env={**env, **step_env, **self.environment},
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            self.ran.append(label)
        return results


def checkout(tmp: Path) -> Path:
    model = tmp / "workspace" / "model"
    (model / "tokenizer").mkdir(parents=True)
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    (tmp / "workspace" / "keys").mkdir()
    return tmp / "workspace"


def key_secrets(tmp: Path, workspace: Path, stem: str) -> dict[str, str]:
    """A passphrase-encrypted key pair: the public key committed under keys/, the private key
    and the passphrase as the secrets the workflow reads."""
    pair = generate_keypair(tmp / "secret-keys", passphrase=PASSPHRASE.encode(), name=stem)
    (workspace / "keys" / f"{stem}.pub.pem").write_bytes(pair.public_key.read_bytes())
    return {"pem": pair.private_key.read_text(), "passphrase": PASSPHRASE}


def assert_ok(results: Mapping[str, subprocess.CompletedProcess[str]]) -> None:
    for label, done in results.items():
        assert done.returncode == 0, f"step {label!r}: {done.stdout}{done.stderr}"
        assert re.search(r"(?m)^(signed|verified) ", done.stdout), f"step {label!r} printed {done.stdout!r}"


def test_key_workflow_signs_verifies_and_removes_the_key(tmp_path: Path) -> None:
    workspace = checkout(tmp_path)
    key = key_secrets(tmp_path, workspace, "model-signing")
    secrets = {
        "secrets.MODEL_SIGNING_KEY": key["pem"],
        "secrets.MODEL_SIGNING_KEY_PASSPHRASE": key["passphrase"],
    }
    runner = Runner(tmp_path, secrets)
    results = runner.run(load("sign-model-key.yml"))
    assert_ok(results)
    assert runner.ran == ["Sign the model", "Check the signature with the public key kept in the repository"]
    assert runner.skipped == [
        "actions/checkout@v4", "actions/setup-python@v5", "Install guard", "actions/upload-artifact@v4",
    ]  # fmt: skip
    assert (workspace / "model" / "model.sig").is_file(), results
    assert list(runner.runner_temp.iterdir()) == []  # the trap removed the key
    # a wrong passphrase fails the step, and the key is removed all the same
    (workspace / "model" / "model.sig").unlink()
    wrong = Runner(tmp_path, {**secrets, "secrets.MODEL_SIGNING_KEY_PASSPHRASE": "wrong"})
    failed = wrong.run(load("sign-model-key.yml"))
    assert failed["Sign the model"].returncode == 2, failed["Sign the model"].stderr
    assert list(wrong.runner_temp.iterdir()) == []


def test_keyless_workflow_signs_with_the_runners_identity(tmp_path: Path) -> None:
    workspace = checkout(tmp_path)
    sigstore = TestSigstore.create(tmp_path / "sigstore", issuer=GITHUB_ISSUER)
    identity = f"https://github.com/{WORKFLOW_REF}"
    with sigstore.serve():
        environment = {
            **sigstore.github_actions_env(identity),
            # the test Sigstore instead of the public-good one (a private instance's setting)
            "GUARD_SIGSTORE_TRUST_CONFIG": str(sigstore.trust_config_path),
        }
        runner = Runner(tmp_path, {"github.workflow_ref": WORKFLOW_REF}, environment)
        assert_ok(runner.run(load("sign-model-keyless.yml")))
    assert runner.ran == ["Sign the model", "Verify it as a consumer would"]
    signature = str(workspace / "model" / "model.sig")
    trust = ["--trust-config", str(sigstore.trust_config_path), "--issuer", GITHUB_ISSUER]
    other = identity.replace("refs/heads/main", "refs/heads/evil")
    assert (
        run(["verify", str(workspace / "model"), "--signature", signature, *trust, "--identity", other]) == 1
    )


@pytest.mark.registry
def test_release_image_workflow_signs_guards_image(tmp_path: Path, registry_auth: Any) -> None:
    workspace = checkout(tmp_path)
    key = key_secrets(tmp_path, workspace, "guard-release")
    access = RegistryAccess(username="guard", password="guard-secret")
    store = RegistryStore.open(registry_auth.host, "cnai/guard", access, loopback=True)
    digest = push_test_image(store, "v0.1.0", b"guard's image, as the build step pushed it")
    expressions = {
        "github.repository": "cnai/guard",
        "github.actor": "guard",
        "secrets.GITHUB_TOKEN": "guard-secret",
        "secrets.IMAGE_SIGNING_KEY": key["pem"],
        "secrets.IMAGE_SIGNING_KEY_PASSPHRASE": key["passphrase"],
        "steps.push.outputs.digest": digest,
    }
    runner = Runner(tmp_path, expressions, {"IMAGE": f"{registry_auth.host}/cnai/guard"})
    assert_ok(runner.run(load("release-image.yml")))
    assert runner.ran == [
        "Sign the image (cosign v3 bundle, written by guard)",
        "Verify the signature as the webhook will",
    ]
    assert "Build and push the image" in runner.skipped
    assert list(runner.runner_temp.iterdir()) == []
    referrers = store.referrers(digest)
    assert referrers is None  # distribution 2.8: the signature is listed under the fallback tag
    assert store.resolve(f"sha256-{digest.split(':')[1]}").digest
