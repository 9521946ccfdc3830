"""The chart's PrometheusRule: rendered with real Helm, checked and unit-tested with real promtool
(Debian's prometheus package) on the metric names guard exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (embedded Helm) is not installed")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) is not installed")

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "guard"
VALUES: dict[str, Any] = {"tls": {"mode": "cert-manager"}, "metrics": {"prometheusRule": {"enabled": True}}}
SELECTOR = 'job="guard-metrics",namespace="guard-system"'


def _rule_spec(values: dict[str, Any] = VALUES) -> dict[str, Any]:
    with helm.Chart.load(CHART_DIR) as chart:
        manifests = chart.render(values, name="guard", namespace="guard-system", is_install=True)
    rule = yaml.safe_load(manifests["guard/templates/prometheusrule.yaml"])
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    spec: dict[str, Any] = rule["spec"]
    return spec


def _promtool(*args: str, cwd: Path) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule_spec()))
    assert "SUCCESS: 5 rules found" in _promtool("check", "rules", "rules.yaml", cwd=tmp_path)


def test_rules_use_only_metrics_guard_exports() -> None:
    from guard.admission.metrics import AdmissionMetrics

    suffixes = {"counter": ("_total",), "histogram": ("_count", "_sum", "_bucket"), "gauge": ("",)}
    exported = {f.name + x for f in AdmissionMetrics().registry.collect() for x in suffixes[f.type]}
    exprs = [r["expr"] for r in _rule_spec()["groups"][0]["rules"]]
    used = {m for e in exprs for m in re.findall(r"\b(guard_[a-z_]+)\{", e)}
    assert used == {
        "guard_admission_request_duration_seconds_count",
        "guard_registry_errors_total",
        "guard_admission_deadline_exceeded_total",
        "guard_admission_policy_decisions_total",
    }
    assert used <= exported, used - exported


def _series(metric: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{metric}{{{SELECTOR},{labels}}}", "values": values}


def test_alerts_fire_on_guards_series(tmp_path: Path) -> None:
    # promtool test rules: synthetic series named and labelled as guard exports them
    spec = _rule_spec()
    for rule in spec["groups"][0]["rules"]:
        rule.pop("annotations")  # templated text; the expressions and labels are under test here
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    count = "guard_admission_request_duration_seconds_count"
    deadline, errors = "guard_admission_deadline_exceeded_total", "guard_registry_errors_total"
    policies = "guard_admission_policy_decisions_total"
    other = f'{count}{{job="other-metrics",namespace="x",decision="denied"}}'
    down = {"severity": "critical", "pod": "guard-0", "job": "guard-metrics", "namespace": "guard-system"}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    _series(count, 'kind="Pod",decision="denied"', "0+6x60"),
                    _series(count, 'kind="Pod",decision="allowed"', "0+1x60"),
                    _series(deadline, 'stage="verification"', "0+1x60"),
                    _series(errors, 'operation="resolve",error="RegistryError"', "0+2x60"),
                    _series(policies, 'policy="carbon.budget",result="deny"', "0+1x60"),
                    _series(policies, 'policy="gpu.fit",result="deny"', "0+1x60"),
                    {"series": f'up{{{SELECTOR},pod="guard-0"}}', "values": "0x60"},
                    # another release's series never count
                    {"series": other, "values": "0+9x60"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "40m",
                        "alertname": "GuardDenyRateHigh",
                        "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
                    },
                    {
                        "eval_time": "40m",
                        "alertname": "GuardDeadlineExceeded",
                        "exp_alerts": [{"exp_labels": {"severity": "critical", "stage": "verification"}}],
                    },
                    {
                        "eval_time": "40m",
                        "alertname": "GuardVerificationErrors",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "operation": "resolve",
                                    "error": "RegistryError",
                                }
                            }
                        ],
                    },
                    {
                        "eval_time": "40m",
                        "alertname": "GuardBudgetBreaches",
                        "exp_alerts": [{"exp_labels": {"severity": "info", "policy": "carbon.budget"}}],
                    },
                    {
                        "eval_time": "40m",
                        "alertname": "GuardMetricsDown",
                        "exp_alerts": [{"exp_labels": down}],
                    },
                ],
            },
            {
                "interval": "1m",
                "input_series": [  # a healthy guard: mostly allowed, no errors: nothing fires
                    _series(count, 'kind="Pod",decision="denied"', "0+1x60"),
                    _series(count, 'kind="Pod",decision="allowed"', "0+9x60"),
                    _series(deadline, 'stage="verification"', "0x60"),
                    {"series": f'up{{{SELECTOR},pod="guard-0"}}', "values": "1x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "40m", "alertname": name, "exp_alerts": []}
                    for name in ("GuardDenyRateHigh", "GuardDeadlineExceeded", "GuardMetricsDown")
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in _promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_rule_needs_the_metrics_listener() -> None:
    with pytest.raises(helm.errors.HelmRenderError, match=r"needs metrics\.port"):
        _rule_spec({**VALUES, "metrics": {"port": 0, "prometheusRule": {"enabled": True}}})
