"""After the webhook's start-up warm-up, the first admission of a process imports nothing more:
a model not seen before, signed and with SBOM, provenance and dataset attestations, decided in a
fresh process against the real registry (guard.admission.warmup)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guard.testing.admission_registry import attach_example, publish_models

pytestmark = pytest.mark.registry

_FIRST_ADMISSION = """
import asyncio, json, sys
from guard.admission.review import parse_review
from guard.admission.wiring import build_engine
from guard.config import parse_config

config, review = json.loads(sys.argv[1]), sys.argv[2].encode()

async def main():
    engine = await build_engine(parse_config(config))
    if sys.argv[3] == "warm":
        await engine.warm_up()
    before = set(sys.modules)
    outcome = await engine.review(parse_review(review).request)
    facts = [v.artifact.facts for v in outcome.artifacts if v.artifact is not None]
    print(json.dumps({"decision": outcome.decision, "facts": facts,
                      "imported": sorted(set(sys.modules) - before)}))
    await engine.aclose()

asyncio.run(main())
"""


def _first_admission(config: dict[str, Any], image: str, mode: str) -> dict[str, Any]:
    from guard.testing.admission import admission_review, pod

    review = json.dumps(admission_review(pod(image)))
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_ADMISSION, json.dumps(config), review, mode],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_first_admission_after_warm_up_imports_nothing(registry: Any, tmp_path: Path) -> None:
    models = publish_models(registry.host, tmp_path / "models", prefix="warm-up")
    for spec, predicate_type in (
        ("cyclonedx/v1.6", "https://cyclonedx.org/bom"),
        ("slsa-provenance/v1", "https://slsa.dev/provenance/v1"),
        ("dataset-provenance/v1", "https://guard.cnai.dev/dataset-provenance/v1"),
    ):
        attach_example(
            models.host,
            models.signed,
            models.signed_digest,
            models.private_key,
            tmp_path,
            spec=spec,
            predicate_type=predicate_type,
        )
    config = models.config()

    cold = _first_admission(config, models.signed, "cold")
    assert any(name.startswith("guard.") for name in cold["imported"])  # what the warm-up is for

    warm = _first_admission(config, models.signed, "warm")
    assert warm["decision"] != "denied", warm
    found = {a["name"]: a["status"] for facts in warm["facts"] for a in facts["attestations"]}
    assert found == dict.fromkeys(("signature", "sbom", "provenance", "datasets"), "present")
    assert warm["imported"] == []
