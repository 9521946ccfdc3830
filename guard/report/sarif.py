"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF readers.

- ``ruleId`` is stable: ``<policy>/<rule>`` for policy findings, ``guard/<rule>`` for guard's own
  checks (verification, drift, recall); each rule carries ``security-severity`` (GitHub's filter).
- ``partialFingerprints["guard/v1"]`` is the scan's fingerprint, so an alert stays one alert across runs.
- A cluster finding has no source file: its location is ``k8s://<cluster>/<namespace>/<kind>/<name>``
  (each part percent-encoded), which GitHub accepts (no code annotation is shown).
- Messages are plain text; brackets from the cluster are escaped (SARIF's embedded links).
- GitHub's limits: 25,000 results per run and 10 MB gzip per upload. Over either, the least severe
  results are dropped first, and the run says so (``properties.truncated``, a notification).

The document is built as data and serialised by ``json`` (no string building).
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote

from guard.report.model import FindingRow, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_RESULTS = 25_000
MAX_GZIP_BYTES = 10 * 1000 * 1000
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
MAX_TAGS = 20


def plain_text(value: str) -> str:
    """``value`` as a SARIF plain text message: SARIF 2.1.0 (3.11.6) reads ``[text](target)`` in
    one as an embedded link (to a URI or a related location), so every bracket of text from the
    cluster is escaped with a backslash, as the spec asks of brackets that are not a link."""
    return value.replace("[", "\\[").replace("]", "\\]")


def rule_id(f: FindingRow) -> str:
    return f"{f.policy}/{f.rule}" if f.policy else f"guard/{f.rule}"


def location_uri(cluster: str, f: FindingRow) -> str:
    parts = (cluster, f.namespace, f.kind, f.name)
    return "k8s://" + "/".join(quote(p, safe="") for p in parts)


def _result(report: Report, f: FindingRow, index: int) -> dict[str, Any]:
    props: dict[str, Any] = {
        "severity": f.severity,
        "category": f.category,
        "controls": list(f.controls),
        "tenant": f.tenant,
        "firstSeen": f.first_seen.isoformat(),
    }
    for key, value in (
        ("artifact", f.artifact),
        ("digest", f.digest),
        ("runningDigest", f.running_digest),
        ("signer", f.signer),
        ("bundleDigest", f.bundle_digest),
        ("logIndex", f.log_index),
        ("container", f.container),
        ("delta", f.delta),
        ("enforcement", f.enforcement),
    ):
        if value is not None:
            props[key] = value
    if f.owner_chain:
        props["ownerChain"] = list(f.owner_chain)
    return {
        "ruleId": rule_id(f),
        "ruleIndex": index,
        "level": LEVEL[f.severity],
        "message": {"text": plain_text(f.message)},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": location_uri(report.cluster, f)}},
                "logicalLocations": [
                    {
                        "name": f.name,
                        "kind": "resource",
                        "fullyQualifiedName": f"{f.namespace}/{f.kind}/{f.name}",
                    }
                ],
            }
        ],
        "partialFingerprints": {"guard/v1": f.fingerprint},
        "properties": props,
    }


def _rules(findings: tuple[FindingRow, ...]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rules: dict[str, dict[str, Any]] = {}
    worst: dict[str, float] = {}
    for f in findings:
        rid = rule_id(f)
        score = float(SECURITY_SEVERITY[f.severity])
        if rid not in rules:
            text = f"guard {f.category} check {f.rule}" + (f" (policy {f.policy})" if f.policy else "")
            rules[rid] = {
                "id": rid,
                "name": f.rule,
                "shortDescription": {"text": text},
                "fullDescription": {"text": f"{text}. Controls: {', '.join(f.controls) or 'none'}."},
                "help": {"text": plain_text(f.remediation or "See the finding's message.")},
                "properties": {"tags": ["security", *f.controls][:MAX_TAGS]},
            }
        if score >= worst.get(rid, -1.0):
            worst[rid] = score
            rules[rid]["properties"]["security-severity"] = SECURITY_SEVERITY[f.severity]
            rules[rid]["defaultConfiguration"] = {"level": LEVEL[f.severity]}
    ordered = sorted(rules)
    return [rules[r] for r in ordered], {r: i for i, r in enumerate(ordered)}


def _document(report: Report, findings: tuple[FindingRow, ...], dropped: int) -> dict[str, Any]:
    from guard import __version__  # noqa: PLC0415

    rules, index = _rules(findings)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "guard",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://guard.cnai.dev",
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"guard/scan/{report.cluster}/{report.appendix.scan_id}"},
        "results": [_result(report, f, index[rule_id(f)]) for f in findings],
        "properties": {
            "scanId": report.appendix.scan_id,
            "truncated": dropped > 0,
            "droppedResults": dropped,
            "partialScan": report.appendix.partial,
        },
    }
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if dropped:
        kept = findings[-1].severity if findings else "none"
        invocation["toolExecutionNotifications"] = [
            {
                "level": "warning",
                "message": {
                    "text": f"{dropped} of {dropped + len(findings)} results left out to stay within "
                    f"GitHub's limits ({MAX_RESULTS} results, {MAX_GZIP_BYTES} bytes gzip); the "
                    f"least severe went first (kept down to severity {kept}). The json and csv "
                    "formats hold every finding."
                },
            }
        ]
    run["invocations"] = [invocation]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()


class SarifRenderer:
    name = "sarif"
    extension = "sarif"
    media_type = "application/sarif+json"

    def __init__(self, max_results: int = MAX_RESULTS, max_gzip_bytes: int = MAX_GZIP_BYTES) -> None:
        self.max_results = max_results
        self.max_gzip_bytes = max_gzip_bytes

    def render(self, report: Report) -> bytes:
        findings = report.findings  # most severe first
        keep = min(len(findings), self.max_results)
        data = _encode(_document(report, findings[:keep], len(findings) - keep))
        if len(gzip.compress(data)) <= self.max_gzip_bytes:
            return data
        low, high = 0, keep  # the largest prefix that fits: binary search on the kept count
        while low < high:
            mid = (low + high + 1) // 2
            candidate = _encode(_document(report, findings[:mid], len(findings) - mid))
            if len(gzip.compress(candidate)) <= self.max_gzip_bytes:
                low, data = mid, candidate
            else:
                high = mid - 1
        return _encode(_document(report, findings[:low], len(findings) - low))
