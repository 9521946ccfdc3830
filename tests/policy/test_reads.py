"""What a policy reads of its input, found in regorus' syntax tree (guard.policy.reads).

The analysis is what the template cache's soundness rests on: every test here says what must be
counted as a read, and the library test holds the shipped policies to it by evaluation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from guard.policy.embedded import EmbeddedEngine, new_regorus_engine
from guard.policy.library import RegoFile, default_library_dir, load_library
from guard.policy.reads import EVERYTHING, minimal, package_reads, related


def _reads(*modules: str) -> dict[str, set[str]]:
    files = [
        RegoFile(Path(f"m{i}.rego"), text, text.split("\n", 1)[0].split()[1])
        for i, text in enumerate(modules)
    ]
    found = package_reads(new_regorus_engine(files).get_ast_as_json())
    return {
        ".".join(package): {".".join(path) or "<all>" for path in paths} for package, paths in found.items()
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
