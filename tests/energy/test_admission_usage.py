"""The loop back to admission: the webhook's policy input carries the published measured usage
(reloaded in place), says which figure it used and how old it is, and the carbon policy decides on it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from guard.config import parse_config
from guard.energy.usage import usage_store
from guard.policy.embedded import EmbeddedEngine
from guard.policy.input import build_input_for_object
from guard.policy.library import default_library_dir, load_library

ROOT = Path(__file__).resolve().parents[2]
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train", "namespace": "team-a"}}
SPEC = {
    "containers": [
        {
            "name": "main",
            "image": "registry.example.com/team-a/m@sha256:" + "a" * 64,
            "resources": {"limits": {"nvidia.com/gpu": "8"}},
        }
    ]
}


def _usage(path: Path, used: float, as_of: datetime) -> None:
    start = as_of.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    path.write_text(
        json.dumps(
            {
                "apiVersion": "guard.cnai.dev/usage/v1",
                "generatedAt": as_of.isoformat(),
                "source": "http://prometheus:9090",
                "tenants": {
                    "team-a": {
                        "period": f"{start:%Y-%m}",
                        "periodStart": start.isoformat(),
                        "periodEnd": end.isoformat(),
                        "asOf": as_of.isoformat(),
                        "usedKgCO2e": used,
                        "usedKwh": used * 2,
                        "forecastKgCO2e": used,
                    }
                },
            }
        )
    )


def _config(usage: Path | None) -> Any:
    energy = {"usageFile": str(usage), "usageMaxAgeSeconds": 3600} if usage else {}
    return parse_config(
        {
            "tenants": [
                {
                    "name": "team-a",
                    "namespaces": ["team-a"],
                    "carbon": {"budgetKgCO2e": 100, "usedKgCO2e": 0},
                }
            ],
            "energy": energy,
        }
    )


def _carbon_violations(config: Any, usage: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    doc = build_input_for_object(POD, SPEC, [], config, usage=usage)
    decision = EmbeddedEngine(load_library(), lambda _p: "deny").evaluate_sync(doc)
    return doc, [(v.rule, v.message) for v in decision.violations if v.policy.startswith("carbon")]


def _validator() -> jsonschema.Draft202012Validator:
    facts = json.loads((ROOT / "attestations/model-facts/v1/schema.json").read_text())
    schema = json.loads((default_library_dir() / "input.schema.json").read_text())
    registry = Registry().with_resource(facts["$id"], Resource.from_contents(facts))
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_admission_decides_on_the_measured_figure(tmp_path: Path) -> None:
    # 8 GPUs x 700 W x 24 h = 134.4 kWh x 475 g/kWh = 63.8 kg: fits the typed 100 kg left
    _, violations = _carbon_violations(_config(None), None)
    assert violations == []
    usage = tmp_path / "usage.json"
    _usage(usage, 90.0, datetime.now(UTC) - timedelta(minutes=5))
    config = _config(usage)
    store = usage_store(config)
    doc, violations = _carbon_violations(config, store)
    carbon = doc["tenant"]["carbon"]
    assert (
        carbon["usedSource"] == "measured" and carbon["usedKgCO2e"] == 90.0 and carbon["usageStale"] is False
    )
    assert 250 < carbon["usageAgeSeconds"] < 400
    assert not list(_validator().iter_errors(doc))
    assert [r for r, _ in violations] == ["carbon_budget_exceeded"]
    assert "(used: measured 90.0 kg CO2e as of" in violations[0][1]
    # the file is replaced (as a ConfigMap update does): read again without a restart
    _usage(usage, 1.0, datetime.now(UTC) - timedelta(hours=2))
    os.utime(usage, (1, 1))
    doc, violations = _carbon_violations(config, store)
    assert doc["tenant"]["carbon"]["usedKgCO2e"] == 1.0
    assert [r for r, _ in violations] == ["carbon_usage_stale"]
    assert "s old" in violations[0][1]


def test_missing_usage_file_uses_the_typed_figure_and_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path / "absent.json")
    doc, violations = _carbon_violations(config, usage_store(config))
    carbon = doc["tenant"]["carbon"]
    assert carbon["usedSource"] == "config" and carbon["usageStale"] is True
    assert "absent.json" in carbon["usageProblem"]
    assert [r for r, _ in violations] == ["carbon_usage_stale"]
    assert "from the config (used_kg_co2e)" in violations[0][1]
