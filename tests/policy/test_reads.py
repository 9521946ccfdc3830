"""What a policy reads of its input, found in regorus' syntax tree (guard.policy.reads).

The analysis is what the template cache's soundness rests on: every test here says what must be
counted as a read, and the library test holds the shipped policies to it by evaluation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from guard.policy.cache import VOLATILE
from guard.policy.embedded import EmbeddedEngine, new_regorus_engine
from guard.policy.library import RegoFile, default_library_dir, load_library
from guard.policy.reads import EVERYTHING, library_reads, minimal, package_reads, related, rule_reads


def _reads(*modules: str) -> dict[str, set[str]]:
    files = [
        RegoFile(Path(f"m{i}.rego"), text, text.split("\n", 1)[0].split()[1])
        for i, text in enumerate(modules)
    ]
    found = package_reads(new_regorus_engine(files).get_ast_as_json())
    return {
        ".".join(package): {".".join(path) or "<all>" for path in paths} for package, paths in found.items()
    }


def _rule_reads(*modules: str) -> dict[str, set[str]]:
    files = [
        RegoFile(Path(f"m{i}.rego"), text, text.split("\n", 1)[0].split()[1])
        for i, text in enumerate(modules)
    ]
    packages, rules = rule_reads(new_regorus_engine(files).get_ast_as_json())
    assert packages == package_reads(new_regorus_engine(files).get_ast_as_json())
    return {
        ".".join((*package, rule)): {".".join(path) or "<all>" for path in paths}
        for (package, rule), paths in rules.items()
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("x := input.a.b", {"a.b"}),
        ('x := input.a["b"].c', {"a.b.c"}),
        ("x := input.a[k].c", {"a"}),  # cut at a variable index: a's whole subtree
        ("x := input.a[0].c", {"a"}),  # and at a number
        ("x := input.a[input.i]", {"a", "i"}),  # the index itself is read
        ("x := input", {"<all>"}),
        ("x := input[k]", {"<all>"}),
        ("x contains p if walk(input, [p, _])", {"<all>"}),
        ('x := object.get(input, ["tenant", "name"], "")', {"tenant.name"}),
        ('x := object.get(input.tenant, "carbon", {})', {"tenant.carbon"}),
        ('x := object.get(input, k, "")', {"<all>"}),  # a key not written out: everything
        ('x := object.get(input, ["a", k], "")', {"<all>"}),
        ('x := object.get(input.a, "b", input.c)', {"a.b", "c"}),  # the default is read too
        ("x if { some c in input.w.containers; c.image }", {"w.containers"}),
        ("x if { every c in input.w.containers { c.image } }", {"w.containers"}),
        ("x := {n | some c in input.w.c; n := c.name}", {"w.c"}),
        ("x := [n | n := input.a.b[_]]", {"a.b"}),
        ("f(v) := v.name\nx := f(input.w)", {"w"}),  # passed on: the whole value
        ("f(v) := input.q\nx := f(1)", {"q"}),  # read inside a function
        ("x if { y with input.w as 1 }\ny if input.z", {"w", "z"}),
        ("deny contains input.msg if input.on", {"msg", "on"}),  # in a rule's head
        ('x := sprintf("%v", [input.a])', {"a"}),
    ],
)
def test_what_a_rule_reads(body: str, expected: set[str]) -> None:
    assert _reads(f"package t\n\n{body}\n")["t"] == expected


def test_imports_are_reads_whole_and_aliases_need_no_following() -> None:
    assert _reads("package t\n\nimport input.request as r\n\nx := r.uid\n")["t"] == {"request"}
    assert _reads("package t\n\nimport input.request\n\nx := request.uid\n")["t"] == {"request"}


def test_a_package_reads_what_the_packages_it_refers_to_read() -> None:
    found = _reads(
        "package p\n\nimport data.h\n\nx := h.f(1)\ny := data.q.r\n",
        "package h\n\nf(v) := input.secret\n",
        "package q\n\nr := input.other\n",
        "package lonely\n\nx := input.mine\n",
    )
    assert found["p"] == {"secret", "other"}
    assert found["lonely"] == {"mine"}


def test_a_dynamic_data_reference_depends_on_every_package_below_its_prefix() -> None:
    found = _reads(
        "package guard.p\n\nx := data.guard[k].v\n",
        "package guard.a\n\nv := input.a\n",
        "package other\n\nv := input.o\n",
    )
    assert found["guard.p"] == {"a"}  # guard.a only: `other` lies outside data.guard
    assert _reads("package p\n\nx := data\n", "package z\n\nv := input.z\n")["p"] == {"z"}


def test_paths_within_another_path_are_dropped() -> None:
    assert minimal([("a", "b"), ("a",), ("c",), ("c", "d", "e")]) == {("a",), ("c",)}
    assert minimal([("a",), EVERYTHING]) == {EVERYTHING}
    assert related(("a",), ("a", "b")) and related(("a", "b"), ("a",)) and not related(("a", "b"), ("a", "c"))


def _project(value: Any, paths: set[tuple[str, ...]]) -> Any:
    """``value`` with only what lies on ``paths`` (a path into a non-object keeps that value)."""
    if () in paths or not isinstance(value, Mapping):
        return value
    out = {}
    for key, item in value.items():
        below = {p[1:] for p in paths if p[0] == key}
        if below:
            out[key] = _project(item, below)
    return out


def test_every_shipped_policy_decides_alike_on_its_reads_alone() -> None:
    """Each policy evaluated on the sample projected onto its reads (everything else removed)
    gives the same sets as on the whole sample: the analysis misses no read the policies make."""
    library = load_library(default_library_dir())
    engine = EmbeddedEngine(library, lambda _: "deny", cache_size=0)
    reads = package_reads(engine._engine().get_ast_as_json())
    samples = sorted(library.root.rglob("samples/*/*.json"))
    assert len(samples) > 40
    checked = 0
    for path in samples:
        document = json.loads(path.read_text())
        whole = engine.evaluate_raw(document)
        for policy in library.policies:
            paths = set(reads[tuple(policy.package.split("."))])
            assert paths and EVERYTHING not in paths, policy.name  # every shipped policy reads parts
            alone = engine.evaluate_raw(_project(document, paths))[policy.name]
            assert alone == whole[policy.name], (path.name, policy.name)
            checked += 1
    assert checked == len(samples) * len(library.policies)


@pytest.mark.parametrize(
    ("body", "deny", "warn"),
    [
        # a rule reads what the rules it names read, not its neighbours
        (
            "deny contains m if { input.a; m := h }\nh := input.b\nwarn contains 1 if input.c",
            {"a", "b"},
            {"c"},
        ),
        # transitively, through functions and else
        (
            "deny contains 1 if f(1)\nf(v) := g if v > 0\ng := input.g\nwarn contains 1 if input.w",
            {"g"},
            {"w"},
        ),
        (
            "deny contains 1 if x\nx if input.a\nelse := input.b\nwarn contains 1 if input.w",
            {"a", "b"},
            {"w"},
        ),
        ("default x := false\nx if input.a\ndeny contains 1 if x\nwarn contains 1 if input.w", {"a"}, {"w"}),
        # a local named like a rule counts as naming it (wider, never narrower)
        (
            "x := input.q\ndeny contains 1 if { some x in input.l }\nwarn contains 1 if input.w",
            {"l", "q"},
            {"w"},
        ),
        # the module's imports count for every rule of it
        ("import input.r\n\ndeny contains 1 if r.x\nwarn contains 1 if true", {"r"}, {"r"}),
        # its own package named through data: all the package reads
        ("deny contains 1 if data.t.h\nh := input.k\nwarn contains 1 if input.w", {"k", "w"}, {"w"}),
        # every definition of the name, deny's several bodies included
        (
            "deny contains 1 if input.a\ndeny contains 2 if input.b\nwarn contains 1 if input.w",
            {"a", "b"},
            {"w"},
        ),
    ],
)
def test_what_each_rule_of_a_package_reads(body: str, deny: set[str], warn: set[str]) -> None:
    found = _rule_reads(f"package t\n\n{body}\n")
    assert (found["t.deny"], found["t.warn"]) == (deny, warn)


def test_a_rule_reads_what_it_names_in_other_modules_and_packages() -> None:
    found = _rule_reads(
        "package t\n\nimport data.lib\n\ndeny contains 1 if { h; lib.f(1) }\n",
        "package t\n\nh := input.other_module\nwarn contains 1 if input.w\n",
        "package lib\n\nf(v) := input.lib_read\nunused := input.lib_unused\n",
    )
    # another package is read whole (all its rules), the same package rule by rule; the import
    # counts for the rules of its module only
    assert found["t.deny"] == {"other_module", "lib_read", "lib_unused"}
    assert found["t.warn"] == {"w"}
    assert found["t.h"] == {"other_module"}


def test_every_shipped_query_decides_alike_on_its_reads_alone() -> None:
    """Each query of the library (a policy's deny or warn set, or both) evaluated on the sample
    projected onto that query's reads gives the same sets as on the whole sample."""
    import pydantic_core

    library = load_library(default_library_dir())
    engine = EmbeddedEngine(library, lambda _: "deny")
    samples = sorted(library.root.rglob("samples/*/*.json"))
    assert len(engine.query_reads) == len(engine._queries) > len(library.policies)
    # the rules of a policy read less than the policy, as a rule: the warn set of tenancy.isolation
    # reads no name, though its deny set (and so the policy) does
    narrower = {
        name for policy, _, name in engine._queries if engine.query_reads[name] != engine.reads[policy]
    }
    assert "data.guard.tenancy.isolation.warn" in narrower
    assert engine.query_reads["data.guard.tenancy.isolation.warn"] == {
        ("workload", "ai"),
        ("workload", "containers"),
    }
    checked = 0
    for path in samples:
        document = json.loads(path.read_text())
        whole = engine.evaluate_raw(document)
        for query in engine._queries:
            policy, rules, name = query
            paths = set(engine.query_reads[name])
            assert paths and EVERYTHING not in paths, name
            text = pydantic_core.to_json(_project(document, paths))
            alone = engine._evaluate_text(text, [query])[policy]
            assert alone == {r: whole[policy][r] for r in rules}, (path.name, name)
            checked += 1
    assert checked == len(samples) * len(engine._queries)


def _emptiness(body: str) -> set[str]:
    """What the emptiness of ``deny`` in ``package t`` holding ``body`` depends on."""
    text = f"package t\n\n{body}\n"
    engine = new_regorus_engine([RegoFile(Path("m.rego"), text, "t")])
    found = library_reads(engine.get_ast_as_json(), VOLATILE)
    assert found.rules == rule_reads(engine.get_ast_as_json())[1]
    return {".".join(path) or "<all>" for path in found.emptiness[(("t",), "deny")]}


_PRINTED = 'sprintf("%s %q", [input.k, input.workload.name])'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the name only printed into the value the set holds: left out
        (f'deny contains v if {{ input.on; v := {{"message": {_PRINTED}}} }}', {"on", "k"}),
        ('deny contains v if { input.on; v := sprintf("%v", [input.workload.name]) }', {"on"}),
        (f'deny contains v if {{ input.on; v := {{"a": [{{"m": {_PRINTED}}}]}} }}', {"on", "k"}),
        ('deny contains v if { v := sprintf("100%% of %s", [input.request.name]) }', set()),
        # anything else keeps it
        (
            f'deny contains v if {{ input.workload.name != "x"; v := {{"m": {_PRINTED}}} }}',
            {"workload.name", "k"},
        ),
        ('deny contains v if { v := sprintf("%d", [input.workload.name]) }', {"workload.name"}),
        ('deny contains v if { v := sprintf("%5s", [input.workload.name]) }', {"workload.name"}),
        ('deny contains v if { v := sprintf("%s %s", [input.workload.name]) }', {"workload.name"}),
        (f'deny contains v if {{ v := {{"m": {_PRINTED}}}; count(v.m) > 3 }}', {"workload.name", "k"}),
        (f'deny contains v if {{ v := {{"m": concat("", [{_PRINTED}])}} }}', {"workload.name", "k"}),
        ('deny contains v if { n := input.workload.name; v := sprintf("%s", [n]) }', {"workload.name"}),
        ('deny contains v if { v := sprintf("%s", [h]) }\nh := input.workload.name', {"workload.name"}),
        ('deny contains v if { v := sprintf("%v", [input.workload]) }', {"workload"}),
        ('deny contains sprintf("%s", [input.workload.name]) if input.on', {"workload.name", "on"}),
        (
            f'deny contains v if {{ v := {{"m": {_PRINTED}}} with input.workload.name as "a" }}',
            {"workload.name", "k"},
        ),
        (
            f'deny contains v if {{ x := {{"m": {_PRINTED}}}; v := 1 }}',  # not the value the set holds
            {"workload.name", "k"},
        ),
    ],
)
def test_what_a_rule_s_emptiness_depends_on(body: str, expected: set[str]) -> None:
    assert _emptiness(body) == expected


_NAMES = ["", "b", 'q"uote\\', "\u00e9\U0001f600\u2028", "%s %d %%", "x" * 300, "\x00\n"]


@pytest.mark.parametrize("name", _NAMES)
def test_every_shipped_rule_s_emptiness_depends_on_its_emptiness_reads_alone(name: str) -> None:
    """Each query of the library whose rules only print the volatile fields, evaluated on the
    sample projected onto their emptiness reads with those fields set to other strings, finds
    something exactly when it does on the whole sample."""
    import pydantic_core

    library = load_library(default_library_dir())
    engine = EmbeddedEngine(library, lambda _: "deny")
    ast = engine._engine().get_ast_as_json()
    emptiness = library_reads(ast, VOLATILE).emptiness
    printing = [engine._volatile_queries[i] for i in sorted(engine._printing)]
    # every query naming the pod only prints it
    assert len(printing) == len(engine._volatile_queries) == 5
    checked = 0
    for path in sorted(library.root.rglob("samples/*/*.json")):
        document = json.loads(path.read_text())
        if not (isinstance(document.get("workload"), dict) and isinstance(document.get("request"), dict)):
            continue
        whole = engine.evaluate_raw(document)
        for policy, rules, query in printing:
            package = tuple(query.split(".")[1:-1])
            paths = {p for r in rules for p in emptiness[(package, r)]}
            projected = _project(document, paths)
            for section, field in VOLATILE:  # present wherever the sample has them, as strings
                if field in document[section]:
                    projected.setdefault(section, {})[field] = name
            alone = engine._evaluate_text(pydantic_core.to_json(projected), [(policy, rules, query)])[policy]
            assert any(alone[r] for r in rules) == any(whole[policy][r] for r in rules), (path.name, query)
            checked += 1
    assert checked > 100
