"""Property-based fuzzing of every parser of bytes someone else controls (issue 9).

The property: a parser returns or raises one of guard's own errors (a ``GuardError``); never
``RecursionError``, ``KeyError``, ``TypeError``... Inputs are random bytes, structured mutations
of valid documents (``guard.testing.fuzzing.Mutator``), and documents of the valid shape whose
values hypothesis replaces with values of any JSON type, so most inputs get past the first
checks. The targets are ``guard.testing.fuzzing.TARGETS`` (the long run, ``make fuzz``, drives
the same ones for millions of inputs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.testing.fuzzing import TARGETS, Crash, Mutator, run_one
from guard.untrusted import MAX_DEPTH, may_nest_deeper, nesting_depth, parse_json

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def shaped(doc: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents of ``doc``'s shape: every value is either ``doc``'s (itself shaped) or any JSON
    value; keys may go missing."""
    if depth > 8:
        return st.just(doc) | JSON_VALUES
    if isinstance(doc, dict):
        inner = {k: shaped(v, depth + 1) | JSON_VALUES for k, v in list(doc.items())[:24]}
        keys = list(inner)
        return st.fixed_dictionaries({}, optional=inner) if len(keys) > 3 else st.fixed_dictionaries(inner)
    if isinstance(doc, list):
        if not doc:
            return st.lists(JSON_VALUES, max_size=3)
        return st.lists(shaped(doc[0], depth + 1) | JSON_VALUES, min_size=0, max_size=3)
    return st.just(doc) | JSON_VALUES


def inputs(name: str) -> st.SearchStrategy[bytes]:
    seeds = TARGETS[name].seeds()
    docs = []
    for seed in seeds:
        try:
            docs.append(json.loads(seed))
        except ValueError:
            continue
    strategies: list[st.SearchStrategy[bytes]] = [
        st.binary(max_size=256),
        st.builds(lambda seed, n: Mutator(n).input_for(seed), st.sampled_from(seeds), st.integers(0, 2**32)),
    ]
    if docs:
        strategies.append(st.one_of(*(shaped(d) for d in docs)).map(lambda v: json.dumps(v).encode()))
    else:  # text inputs (references): valid ones with characters replaced
        strategies.append(
            st.builds(
                lambda seed, junk, at: (seed.decode()[:at] + junk + seed.decode()[at:]).encode(),
                st.sampled_from(seeds),
                st.text(max_size=8),
                st.integers(0, 60),
            )
        )
    return st.one_of(*strategies)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_are_accepted(name: str) -> None:
    """The seeds are valid documents (so mutations start past the first checks)."""
    target = TARGETS[name]
    accepted = [run_one(target, seed) for seed in target.seeds()]
    # the bundle seed is signed by a key of this process: accepted; every other seed too
    assert all(accepted), (name, accepted)


def _fuzz(name: str) -> Any:
    @SETTINGS
    @given(data=inputs(name))
    def run(data: bytes) -> None:
        try:
            run_one(TARGETS[name], data)
        except Crash as crash:
            raise AssertionError(f"{crash} on input {data[:300]!r}") from crash.error

    return run


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_guard_errors_escape(name: str) -> None:
    _fuzz(name)()


# --- guard.untrusted: what it accepts, it returns unchanged; what it refuses, it says why ------


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@SETTINGS
@given(JSON_VALUES)
def test_untrusted_round_trips_json(value: Any) -> None:
    text = json.dumps(value)
    assert parse_json(text, "doc") == value
    assert nesting_depth(text.encode()) == _depth(value)
    for limit in range(_depth(value) + 2):  # the counting shortcut never misses a deeper document
        assert may_nest_deeper(text.encode(), limit) or nesting_depth(text.encode()) <= limit


@SETTINGS
@given(st.integers(MAX_DEPTH + 1, 3000), st.sampled_from("[{"), st.text(max_size=5))
def test_untrusted_refuses_deep_nesting(depth: int, bracket: str, tail: str) -> None:
    from guard.errors import UntrustedContentError

    opening = bracket if bracket == "[" else '{"k":'
    text = opening * depth + tail
    with pytest.raises(UntrustedContentError, match="nested at most"):
        parse_json(text, "doc")


@SETTINGS
@given(st.text(max_size=40))
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    doc = json.dumps({"s": "[" * 500 + text + "{" * 500})
    assert parse_json(doc, "doc")["s"].startswith("[" * 500)
