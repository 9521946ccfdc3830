"""A readable rendering of the model facts (``guard facts`` without ``--json``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from guard.attest.facts import ModelFacts

STATUS_STYLE = {"present": "green", "missing": "yellow", "invalid": "bold red"}


def _v(value: object) -> str:
    return "—" if value is None or value in ((), []) else str(value)


def render_facts(facts: ModelFacts, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    s = facts.subject
    console.print(f"[bold]{s.name}[/] ({s.kind}) sha256:{s.digest['sha256']}")
    signers = ", ".join(
        f"{x.method}: {x.identity}" + (f" ({x.issuer})" if x.issuer else "") for x in facts.signers
    )
    m, p, e = facts.model, facts.provenance, facts.energy
    rows = [
        ("signers", signers or "none verified"),
        ("licences", ", ".join(facts.licenses) or "—"),
        ("name / version", f"{_v(m.name)} / {_v(m.version)}"),
        ("architecture", _v(m.architecture)),
        ("parameters", f"{m.parameter_count:,}" if m.parameter_count is not None else "—"),
        ("precision", _v(m.precision)),
        ("quantization", _v(m.quantization)),
        ("format", _v(m.format)),
        ("task", _v(m.task)),
        ("builder", _v(p.builder)),
        ("source", f"{_v(p.source_repository)} @ {_v(p.source_revision)}"),
        ("training energy", f"{_v(e.training_k_wh)} kWh, {_v(e.co2e_kg)} kg CO2e"),
    ]
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)
    if facts.datasets:
        ds = Table("dataset", "relation", "licences", "personal", "approved")
        for d in facts.datasets:
            approved = f"yes, by {d.approval.by} at {d.approval.at:%Y-%m-%d}" if d.approval else "no"
            ds.add_row(d.name, d.relation, ", ".join(d.licenses) or "—", _v(d.personal_data), approved)
        console.print(ds)
    att = Table("attestation", "status", "signer / reason", "source")
    for a in facts.attestations:
        detail = a.reason if a.reason else (a.signer.identity if a.signer else "")
        att.add_row(a.name, f"[{STATUS_STYLE[a.status]}]{a.status}[/]", detail, _v(a.source))
    console.print(att)
