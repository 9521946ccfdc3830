"""``--format oscal``: NIST OSCAL 1.1/1.2 assessment-results (JSON) for GRC tools.

One result per report: ``reviewed-controls`` lists the controls guard assessed; an observation
per finding (the workload as an inventory item, the evidence: digest, signer, bundle digest,
log index) and per assessed control (how many workloads its rules passed); a finding per
assessed control whose target status is ``satisfied`` or ``not-satisfied``. Controls guard does
not assess are not claimed either way. OSCAL ids are tokens, so a control id such as
``NIST-AI-RMF MEASURE-2.12`` becomes ``nist-ai-rmf_measure-2.12`` with the original kept in a
``label`` prop. UUIDs are name-based (v5) from the scan id, so the same report gives the same
document. Built as data with guard's own small code and serialised by ``json``; validated in
tests by compliance-trestle (a test dependency only: its pins make it a poor runtime one).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from guard.report.model import ControlRow, FindingRow, Report

OSCAL_VERSION = "1.1.2"
_NAMESPACE = uuid.UUID("5b1c3c1e-8f0e-4a4e-9a53-6f1c8d3b2a10")  # guard's, for uuid5 ids


def control_token(control_id: str) -> str:
    token = re.sub(r"[^a-z0-9._-]+", "_", control_id.lower()).strip("_")
    return token if token and (token[0].isalpha() or token[0] == "_") else f"_{token}"


_MARKDOWN = re.compile(r"([\\`*_\[\]<>!#|~&])")  # inline syntax: code, emphasis, links, HTML, tables
_BULLET = re.compile(r"^([-+=])")  # a list item or a setext underline at the start
_NUMBERED = re.compile(r"^(\d+)([.)])")  # an ordered list item at the start
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def markup(value: object) -> str:
    """Text from the cluster as an OSCAL markup value (OSCAL's JSON carries markup-line and
    markup-multiline as Markdown): one line, Markdown's syntax backslash-escaped, so a GRC tool
    shows the text as it was and renders no link, image, HTML or code span from it."""
    text = _CONTROL.sub(" ", "" if value is None else str(value)).strip()
    text = _BULLET.sub(r"\\\1", _MARKDOWN.sub(r"\\\1", text))
    return _NUMBERED.sub(r"\1\\\2", text)


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def _time(report: Report) -> str:
    return report.appendix.finished.isoformat()


def _finding_observation(report: Report, f: FindingRow, item: str) -> dict[str, Any]:
    evidence = [
        f"{label}: {value}"
        for label, value in (
            ("artifact", f.artifact),
            ("digest", f.digest),
            ("running digest", f.running_digest),
            ("signer", f.signer),
            ("bundle digest", f.bundle_digest),
            ("log index", f.log_index),
        )
        if value is not None
    ]
    return {
        "uuid": _uuid(report.appendix.scan_id, "observation", f.fingerprint),
        "title": markup(f"{f.severity} {f.rule} on {f.kind} {f.namespace}/{f.name}"),
        "description": markup(f.message),
        "props": [{"name": "label", "value": f.fingerprint, "remarks": "guard finding fingerprint"}],
        "methods": ["TEST"],
        "types": ["finding"],
        "subjects": [
            {
                "subject-uuid": item,
                "type": "inventory-item",
                "title": markup(f"{f.kind} {f.namespace}/{f.name}"),
            }
        ],
        "relevant-evidence": [{"description": markup("; ".join(evidence) or "see the finding's message")}],
        "collected": _time(report),
        **({"remarks": markup(f"Remediation: {f.remediation}")} if f.remediation else {}),
    }


def _control_observation(report: Report, c: ControlRow) -> dict[str, Any]:
    return {
        "uuid": _uuid(report.appendix.scan_id, "control-observation", c.id),
        "title": markup(f"{c.id}: {c.passed} of {c.assessed} workloads pass"),
        "description": markup(
            f"guard rules {', '.join(c.rules) or '-'} assessed {c.assessed} workloads for {c.id} "
            f"({c.title}): {c.passed} passed, {c.failed} failed, {c.errors} in error."
        ),
        "methods": ["TEST"],
        "types": ["control-objective"],
        "relevant-evidence": [
            {
                "description": markup(
                    f"guard scan {report.appendix.scan_id}, policy library "
                    f"{report.appendix.policy_library_digest or 'from an OPA server'}"
                )
            }
        ],
        "collected": _time(report),
    }


class OscalRenderer:
    name = "oscal"
    extension = "oscal.json"
    media_type = "application/oscal.ar+json"

    def render(self, report: Report) -> bytes:
        return (json.dumps(self.document(report), indent=2, ensure_ascii=False) + "\n").encode()

    def document(self, report: Report) -> dict[str, Any]:
        a = report.appendix
        assessed = [c for c in report.coverage if c.status != "not-assessed"]
        items: dict[str, dict[str, Any]] = {}
        observations = []
        by_control: dict[str, list[str]] = {}
        for f in report.findings:
            key = f"{f.kind}/{f.namespace}/{f.name}"
            item = _uuid(a.scan_id, "workload", key)
            items.setdefault(
                item,
                {
                    "uuid": item,
                    "description": markup(f"{f.kind} {f.namespace}/{f.name}"),
                    "props": [{"name": "asset-type", "value": "container"}],
                },
            )
            obs = _finding_observation(report, f, item)
            observations.append(obs)
            for control in f.controls:
                by_control.setdefault(control, []).append(obs["uuid"])
        findings = []
        for c in assessed:
            summary = _control_observation(report, c)
            observations.append(summary)
            related = [summary["uuid"], *by_control.get(c.id, [])]
            findings.append(
                {
                    "uuid": _uuid(a.scan_id, "finding", c.id),
                    "title": markup(f"{c.id}: {c.title}"),
                    "description": markup(
                        f"{c.passed} of {c.assessed} workloads pass (compliance "
                        f"{(c.compliance or 0) * 100:.0f}%)."
                    ),
                    "props": [{"name": "label", "value": c.id}],
                    "target": {
                        "type": "objective-id",
                        "target-id": control_token(c.id),
                        "status": {
                            "state": "satisfied" if c.status == "pass" else "not-satisfied",
                            **({"reason": "fail"} if c.status != "pass" else {"reason": "pass"}),
                        },
                    },
                    "related-observations": [{"observation-uuid": u} for u in related],
                }
            )
        result: dict[str, Any] = {
            "uuid": _uuid(a.scan_id, "result"),
            "title": markup(report.title),
            "description": markup(
                f"guard scan {a.scan_id} of {report.cluster}"
                + (f", {report.scope.kind} {report.scope.name}" if report.scope else "")
                + (" (partial: " + "; ".join(a.partial_reasons) + ")" if a.partial else "")
            ),
            "start": a.started.isoformat(),
            "end": a.finished.isoformat(),
            "reviewed-controls": {
                "control-selections": [
                    {"include-controls": [{"control-id": control_token(c.id)} for c in assessed]}
                    if assessed
                    else {"description": "no control was assessed"}
                ],
            },
            "observations": observations,
            "findings": findings,
        }
        if items:
            result["local-definitions"] = {"inventory-items": list(items.values())}
        if not observations:
            del result["observations"]
        if not findings:
            del result["findings"]
        return {
            "assessment-results": {
                "uuid": _uuid(a.scan_id, "assessment-results", report.scope.name if report.scope else ""),
                "metadata": {
                    "title": markup(report.title),
                    "last-modified": report.generated.isoformat(),
                    "version": a.scan_id,
                    "oscal-version": OSCAL_VERSION,
                },
                "import-ap": {"href": f"#guard-assessment-plan-{control_token(a.scan_id)}"},
                "results": [result],
            }
        }
