"""`guard check`: manifests evaluated by the webhook's engine, per object, with exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from guard.cli import run

DIGEST = "sha256:" + "0" * 64

PINNED_POD = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: pinned, namespace: ml}}
spec:
  containers:
  - name: app
    image: registry.example.com/team/app@{DIGEST}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{port: 80}]}
"""
TAGGED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: tagged}
spec:
  containers:
  - name: app
    image: registry.example.com/team/app:1.0
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    assert run(["keygen", "--out", str(tmp_path / "keys"), "--name", "k"]) == 0
    path = tmp_path / "guard.yaml"
    path.write_text(
        "authorities:\n  k: {kind: key, key: keys/k.pub.pem}\n"
        "rules:\n  - name: apps\n    artifacts: ['registry.example.com/**']\n    authorities: [k]\n"
    )
    return path


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = run(["check", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_offline_judges_policies_per_object_and_skips_kinds_guard_does_not_admit(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("---\n".join([PINNED_POD, SERVICE, TAGGED_POD]))
    code, doc = _check(["-f", str(manifest), "--offline", "--config", str(config)], capsys)
    assert code == 1
    by_name = {o["name"]: o for o in doc["objects"]}
    assert by_name["pinned"]["decision"] == "allowed"
    assert by_name["pinned"]["artifacts"][0]["status"] == "notVerified"
    assert by_name["svc"]["decision"] == "skipped"
    tagged = by_name["tagged"]
    assert tagged["decision"] == "denied"
    assert tagged["namespace"] == "default"
    assert {v["policy"] for v in tagged["violations"]} == {"supply_chain.mutable_tags"}
    assert doc["summary"] == {"objects": 3, "allowed": 1, "warned": 0, "denied": 1, "skipped": 1}
    assert doc["exitCode"] == 1 and doc["offline"] is True
    assert by_name["pinned"]["source"].endswith("m.yaml#0")


def test_directory_json_and_list_objects_are_read(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.yaml").write_text(PINNED_POD)
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}],
    }
    (tmp_path / "dir" / "b.json").write_text(json.dumps(listing))
    (tmp_path / "dir" / "notes.txt").write_text("not a manifest")
    code, doc = _check(["-f", str(tmp_path / "dir"), "--offline", "--config", str(config)], capsys)
    assert code == 0
    assert [o["name"] for o in doc["objects"]] == ["pinned", "s"]


def test_stdin_is_read_as_helm_output(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    helm = "---\n# Source: chart/templates/pod.yaml\n" + PINNED_POD + "---\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(helm.encode())))
    code, doc = _check(["-f", "-", "--offline", "--config", str(config)], capsys)
    assert code == 0
    assert doc["objects"][0]["source"] == "<stdin>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1", "syntax error"),
        ("- a\n- b\n", "expected a Kubernetes object"),
        ("kind: Pod\nmetadata: {name: x}\n", "expected a string apiVersion"),
        ("apiVersion: v1\nkind: Pod\n", "expected metadata.name"),
    ],
)
def test_bad_manifests_are_usage_errors_saying_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(text)
    assert run(["check", "-f", str(manifest), "--offline"]) == 2
    assert expected in capsys.readouterr().err


def test_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "-f", str(tmp_path / "nope.yaml")]) == 2
    assert "expected a manifest file" in capsys.readouterr().err


def test_online_unreachable_registry_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen", "--out", str(tmp_path / "keys"), "--name", "k"]) == 0
    config = tmp_path / "guard.yaml"
    config.write_text(
        "authorities:\n  k: {kind: key, key: keys/k.pub.pem}\n"
        "rules:\n  - name: local\n    artifacts: ['127.0.0.1:9/**']\n    authorities: [k]\n"
    )
    manifest = tmp_path / "m.yaml"
    manifest.write_text(PINNED_POD.replace("registry.example.com", "127.0.0.1:9"))
    capsys.readouterr()
    code, doc = _check(["-f", str(manifest), "--config", str(config)], capsys)
    assert code == 3, json.dumps(doc["objects"][0], indent=1)
    assert doc["objects"][0]["registryUnavailable"] is True
    assert doc["objects"][0]["artifacts"][0]["status"] == "error"


def test_an_alias_bomb_and_deep_nesting_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert run(["check", "-f", str(bomb), "--offline"]) == 2
    assert "alias bomb" in capsys.readouterr().err
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert run(["check", "-f", str(deep), "--offline"]) == 2
    assert "expected" in capsys.readouterr().err
