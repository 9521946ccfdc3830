"""guard.lib.fmt (policies/lib/fmt.rego) writes every number and value the same on regorus and on
real OPA (OPA's Go library): property-based, generated numbers and values through both engines."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from guard.policy.embedded import new_regorus_engine
from guard.policy.library import PolicyLibrary, RegoFile
from guard.testing.opa import new_opa

PROBE = """package fmt_probe

import data.guard.lib.fmt

out := {
	"decimal0": [fmt.decimal(x, 0) | some x in input.numbers],
	"decimal1": [fmt.decimal(x, 1) | some x in input.numbers],
	"decimal2": [fmt.decimal(x, 2) | some x in input.numbers],
	"decimal3": [fmt.decimal(x, 3) | some x in input.numbers],
	"int": [fmt.int(x) | some x in input.numbers],
	"number": [fmt.number(x) | some x in input.numbers],
	"value": [fmt.value(v) | some v in input.values],
	"general": [fmt._general(v) | some v in input.values],
	"set": [fmt.value({e | some e in v}) | some v in input.values; is_array(v)],
	"generalSet": [fmt._general({e | some e in v}) | some v in input.values; is_array(v)],
}
"""


class Engines:
    def __init__(self, modules: list[RegoFile]) -> None:
        os.environ["RUST_BACKTRACE"] = "0"
        self.regorus = new_regorus_engine(modules, [("fmt_probe.rego", PROBE)])
        self.opa = new_opa(modules)
        self.opa.add_policy("fmt_probe.rego", PROBE)

    def both(self, numbers: list[Any], values: list[Any]) -> tuple[Any, Any]:
        document = {"numbers": numbers, "values": values}
        self.regorus.set_input_json(json.dumps(document))
        ours = json.loads(self.regorus.eval_rule_as_json("data.fmt_probe.out"))
        return ours, self.opa.eval_document("fmt_probe.out", document)


@pytest.fixture(scope="module")
def engines(library: PolicyLibrary) -> Iterator[Engines]:
    fmt = [m for m in library.helpers if m.package == "guard.lib.fmt"]
    assert fmt, "policies/lib/fmt.rego (package guard.lib.fmt) is missing"
    both = Engines(fmt)
    yield both
    both.opa.close()


# Numbers a policy input or a policy's arithmetic may hold: integers of every size up to 64 bits,
# any finite float, figures written with a few decimals (ties such as 1.005 and 2.675, whose
# binary values lie below the tie), and halves.
_numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(min_value=-(10**7), max_value=10**7, places=3, allow_nan=False, allow_infinity=False).map(
        float
    ),
    st.integers(min_value=-(10**6), max_value=10**6).map(lambda n: n / 2),
)
# Strings of any character assigned in Python's Unicode tables (14.0 on 3.11): what %q escapes is
# the same on both engines for these. Code points assigned later (CJK Extension J, U+323B0) are
# escaped by one and written by the other: Go (OPA) and Rust (regorus) ship other Unicode versions.
_text = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=12)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _text)
_level1 = st.one_of(_scalars, st.lists(_scalars, max_size=4), st.dictionaries(_text, _scalars, max_size=4))
_values = st.one_of(_level1, st.lists(_level1, max_size=3), st.dictionaries(_text, _level1, max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numbers=st.lists(_numbers, max_size=12), values=st.lists(_values, max_size=6))
@example(numbers=[700, 700.0, 1.005, 2.675, 0.15, 0.25, -2.5, 1e6, 1e21, 1.5e-7, 123456789.5], values=[])
@example(numbers=[], values=[["a\u2028b", "\x01", "\x7f", "\u00a0"], {"k": [2.0, 300]}, 1e-7])
@example(numbers=[], values=[None, True, False, 2.0, [], ["MIT", "Apache-2.0"], ["a", 1], {}, ""])
def test_fmt_helpers_write_the_same_on_regorus_and_opa(
    engines: Engines, numbers: list[Any], values: list[Any]
) -> None:
    ours, theirs = engines.both(numbers, values)
    assert ours == theirs
    # value()'s short branches (scalars, lists of strings) write what its general path writes
    assert ours["value"] == ours["general"]
    assert ours["set"] == ours["generalSet"]


def test_fmt_output_is_what_a_reader_expects(engines: Engines) -> None:
    numbers = [700, 2.0, 131.449, 1.005, -0.04, 8030261248, 0.5, 1853799697961663844654615017134489.6]
    ours, theirs = engines.both(numbers, [[1.5, "a"], {"b": 2.0}])
    assert ours == theirs
    assert theirs["decimal1"] == ["700.0", "2.0", "131.4", "1.0", "0.0", "8030261248.0", "0.5", "1.854e+33"]
    assert theirs["decimal2"][3] == "1.01"  # the decimal tie rounds up on both engines
    assert theirs["number"] == ["700", "2", "131.449", "1.005", "-0.04", "8030261248", "0.5", "1.854e+33"]
    assert theirs["value"] == ['[1.5, "a"]', '{"b": 2}']
    assert not math.isnan(float(theirs["number"][0]))


_NUMBER_VERB = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[dfFeEgGvxXob]")


def test_library_messages_use_no_engine_dependent_verb(library: PolicyLibrary) -> None:
    """sprintf's %d / %f / %v ... differ between regorus and OPA: the shipped library formats
    numbers and values with guard.lib.fmt and %s (policies/README.md, "Writing a policy")."""
    found = []
    for module in library.modules():
        if module.package == "guard.lib.fmt":
            continue
        for number, line in enumerate(module.text.splitlines(), 1):
            code = line.split("#", 1)[0]
            for call in re.finditer(r'sprintf\("((?:[^"\\]|\\.)*)"', code):
                verbs = _NUMBER_VERB.findall(call.group(1).replace("%%", ""))
                if verbs:
                    found.append(f"{module.path.name}:{number}: {', '.join(verbs)}")
    assert found == []
