"""`guard pin` against Debian's docker-registry: manifests in git rewritten to the pushed digest,
--check failing CI while something is unpinned, a second run changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.cli import run
from guard.testing.admission_registry import PublishedModels, publish_models

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def models(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> PublishedModels:
    return publish_models(registry.host, tmp_path_factory.mktemp("pin-cli"), prefix="pin-cli")


MANIFEST = """\
# the team's inference service
apiVersion: apps/v1
kind: Deployment
metadata:
  name: server
  namespace: team-a
spec:
  template:
    spec:
      containers:
        - name: server
          image: {signed}   # pinned by guard pin
        - name: sidecar
          image: "docker.io/library/busybox:1.36"
      volumes:
        - name: weights
          image:
            reference: {signed}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
data:
  note: "{signed} in a string that is not an image field"
"""


def test_pin_rewrites_manifests_and_check_gates_ci(models: PublishedModels, tmp_path: Path) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text(yaml.safe_dump(models.config()))
    repo = tmp_path / "deploy"
    repo.mkdir()
    manifest = repo / "server.yaml"
    manifest.write_text(MANIFEST.format(signed=models.signed))
    (repo / "README.md").write_text("not a manifest")

    assert run(["pin", str(repo), "--config", str(config), "--check"]) == 1
    assert manifest.read_text() == MANIFEST.format(signed=models.signed)  # --check writes nothing

    assert run(["pin", str(repo), "--config", str(config)]) == 0
    text = manifest.read_text()
    pinned = f"{models.signed}@{models.signed_digest}"
    docs = list(yaml.safe_load_all(text))
    spec = docs[0]["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == pinned
    assert spec["volumes"][0]["image"]["reference"] == pinned
    # no rule covers busybox: left as written (--all would pin it too)
    assert spec["containers"][1]["image"] == "docker.io/library/busybox:1.36"
    assert "# the team's inference service" in text and "# pinned by guard pin" in text
    assert docs[1]["data"]["note"] == f"{models.signed} in a string that is not an image field"

    assert run(["pin", str(repo), "--config", str(config), "--check"]) == 0
    before = manifest.read_text()
    assert run(["pin", str(repo), "--config", str(config)]) == 0
    assert manifest.read_text() == before


def test_pin_refuses_a_missing_path_and_bad_yaml(tmp_path: Path) -> None:
    assert run(["pin", str(tmp_path / "absent")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    assert run(["pin", str(bad)]) == 2


def test_pin_json_the_same_document_with_and_without_check(
    models: PublishedModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    config = tmp_path / "guard.yaml"
    config.write_text(yaml.safe_dump(models.config()))
    manifest = tmp_path / "server.yaml"
    manifest.write_text(MANIFEST.format(signed=models.signed))
    capsys.readouterr()
    assert run(["pin", str(manifest), "--config", str(config), "--check", "--json"]) == 1
    checked = json.loads(capsys.readouterr().out)  # printed on failure too
    assert checked["check"] is True and checked["files"] == 1 and checked["references"] == 2
    assert {p["location"] for p in checked["pins"]} == {
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/volumes/0/image/reference",
    }
    assert all(p["pinned"] is None and p["kind"] == "Deployment" for p in checked["pins"])
    assert run(["pin", str(manifest), "--config", str(config), "--json"]) == 0
    pinned = json.loads(capsys.readouterr().out)
    assert set(pinned) == set(checked) and pinned["references"] == 2
    assert {p["pinned"] for p in pinned["pins"]} == {f"{models.signed}@{models.signed_digest}"}
