"""``merged``: two decisions on disjoint sets of rules make the one ``decide`` makes on all of them
(the template cache answers a pod with the violations of the rules reading no name, decided once,
merged with those of the rules evaluated again)."""

from __future__ import annotations

import random
from typing import Any

from guard.policy.decision import Enforcement, decide, merged

_ENFORCEMENT: dict[str, Enforcement] = {"p": "deny", "q": "warn", "r": "dryrun"}


def _entry(rng: random.Random) -> dict[str, Any]:
    return {
        "rule": rng.choice(["a", "b"]),
        "message": rng.choice(["m", "n"]),  # few texts: many entries in equal order
        "severity": rng.choice(["high", "low"]),
        "container": rng.choice([None, "c1", "c2"]),
    }


def test_two_decisions_merge_into_the_one_on_all_rules() -> None:
    rng = random.Random(16)
    for _ in range(500):
        raw = {
            policy: {source: [_entry(rng) for _ in range(rng.randrange(4))] for source in ("deny", "warn")}
            for policy in _ENFORCEMENT
        }
        rules = [(policy, source) for policy in raw for source in ("deny", "warn")]
        one = {rule for rule in rules if rng.random() < 0.5}
        left: dict[str, dict[str, list[Any]]] = {}
        right: dict[str, dict[str, list[Any]]] = {}
        for policy, source in rules:
            (left if (policy, source) in one else right).setdefault(policy, {})[source] = raw[policy][source]
        whole = decide(raw, _ENFORCEMENT.__getitem__)
        kept = tuple(v for v in whole.violations if (v.policy, v.source) in one)  # as the cache keeps them
        assert kept == decide(left, _ENFORCEMENT.__getitem__).violations
        assert merged(kept, decide(right, _ENFORCEMENT.__getitem__).violations) == whole.violations


def test_a_deny_and_a_warn_entry_in_equal_order_keep_decide_s_order() -> None:
    entry = {"rule": "a", "message": "same", "severity": "low"}
    raw = {"q": {"deny": [{**entry, "container": "d"}], "warn": [{**entry, "container": "w"}]}}
    whole = decide(raw, _ENFORCEMENT.__getitem__)  # q warns: both entries are warnings
    assert [v.container for v in whole.violations] == ["d", "w"]
    deny_set = decide({"q": {"deny": raw["q"]["deny"]}}, _ENFORCEMENT.__getitem__).violations
    warn_set = decide({"q": {"warn": raw["q"]["warn"]}}, _ENFORCEMENT.__getitem__).violations
    assert merged(warn_set, deny_set) == merged(deny_set, warn_set) == whole.violations
