"""One query for a policy whose deny and warn share helpers: the same sets, helpers computed once."""

from __future__ import annotations

from pathlib import Path

from guard.policy.decision import Enforcement
from guard.policy.embedded import EmbeddedEngine
from guard.policy.library import PolicyLibrary, load_library
from guard.policy.queries import plan, shared_helpers

SHARED = """package guard.x.p

controls := ["C-1"]

where(c) := sprintf("container %q", [c.name])

sized contains c if {
\tsome c in input.containers
\tc.size > 0
}

big contains c if {
\tsome c in sized
\tc.size > 10
}

names := {c.name | some c in big}

deny contains {"rule": "huge", "message": sprintf("%s is huge", [where(c)]), "severity": "high"} if {
\tsome c in big
\tc.size > 100
\tnames[c.name]
}

warn contains {"rule": "big", "message": sprintf("%s is big", [where(c)]), "severity": "low"} if {
\tsome c in big
\tc.size <= 100
\tnames[c.name]
}
"""

APART = """package guard.x.q

deny contains {"rule": "a", "message": "a", "severity": "low"} if input.a
warn contains {"rule": "b", "message": "b", "severity": "low"} if input.b
"""


def _deny(policy: str) -> Enforcement:
    return "deny"


def _engines(tmp_path: Path) -> tuple[EmbeddedEngine, EmbeddedEngine]:
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/p.rego").write_text(SHARED)
    (root / "x/q.rego").write_text(APART)
    library = load_library(root)
    combined = EmbeddedEngine(library, _deny, cache_size=0)
    apart = EmbeddedEngine(library, _deny, cache_size=0)
    # every set on its own
    apart._queries = [(p.name, (r,), f"data.{p.package}.{r}") for p in library.policies for r in p.rules]
    return combined, apart


def test_only_helpers_reading_the_input_count(tmp_path: Path) -> None:
    combined, _ = _engines(tmp_path)
    policies = {p.name: p for p in combined.library.policies}
    assert shared_helpers(policies["x.p"]) == {"sized", "big", "names"}  # not the constant, not the function
    assert shared_helpers(policies["x.q"]) == set()
    assert [(p.name, together) for p, together in plan(combined.library.policies)] == [
        ("x.p", True),
        ("x.q", False),
    ]


def test_the_combined_query_gives_the_same_sets(tmp_path: Path) -> None:
    combined, apart = _engines(tmp_path)
    document = {
        "containers": [{"name": "a", "size": 5}, {"name": "b", "size": 50}, {"name": "c", "size": 500}],
        "a": True,
    }
    assert combined.evaluate_raw(document) == apart.evaluate_raw(document)
    messages = [v.message for v in combined.evaluate_sync(document).violations]
    assert messages == ['container "c" is huge', "a", 'container "b" is big']


def test_the_shipped_library_asks_gpu_fit_and_carbon_budget_once(library: PolicyLibrary) -> None:
    together = {p.name for p, once in plan(library.policies) if once}
    assert {"gpu.fit", "carbon.budget"} <= together
    assert "tenancy.isolation" not in together  # its two sets share only constants
