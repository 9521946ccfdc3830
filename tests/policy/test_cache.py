"""The embedded engine's decision cache: reused only for an input the library cannot tell apart."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.policy.cache import DecisionCache, cacheable, reads_uid, without_comments
from guard.policy.decision import Decision, Enforcement
from guard.policy.embedded import EmbeddedEngine
from guard.policy.examples import example_input
from guard.policy.library import default_library_dir, load_library


def _deny(policy: str) -> Enforcement:
    return "deny"


def _library(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "lib"
    (root / "x").mkdir(parents=True)
    (root / "x/p.rego").write_text("package guard.x.p\n\n" + body)
    return root


def test_a_repeated_input_under_another_uid_is_a_hit_with_the_same_decision() -> None:
    engine = EmbeddedEngine(load_library(), _deny)
    assert engine.cache is not None and engine.cache.ignore_uid  # the library never reads the uid
    document = example_input()
    first = engine.evaluate_sync(document)
    again = copy.deepcopy(document)
    again["request"]["uid"] = "another-uid"
    assert engine.evaluate_sync(again) is first
    assert (engine.cache.hits, engine.cache.misses) == (1, 1)
    renamed = copy.deepcopy(document)
    renamed["workload"]["name"] = "another-pod"
    assert engine.evaluate_sync(renamed) is not first
    assert engine.cache.misses == 2


def test_every_sample_decides_the_same_with_and_without_the_cache() -> None:
    library = load_library(default_library_dir())
    samples = sorted(library.root.rglob("samples/*/*.json"))
    assert len(samples) > 40  # the library's allowed and denied samples
    cached, uncached = EmbeddedEngine(library, _deny), EmbeddedEngine(library, _deny, cache_size=0)
    assert uncached.cache is None
    for path in samples:
        document = _sample(path)
        expected = uncached.evaluate_sync(document)
        assert cached.evaluate_sync(document) == expected, path
        assert cached.evaluate_sync(copy.deepcopy(document)) == expected, path  # from the cache


def _sample(path: Path) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_a_library_reading_the_uid_keeps_it_in_the_key(tmp_path: Path) -> None:
    root = _library(
        tmp_path,
        'deny contains {"rule": "r", "message": sprintf("uid %s", [input.request.uid])} if true\n',
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.cache is not None and not engine.cache.ignore_uid
    first = engine.evaluate_sync({"request": {"uid": "a"}})
    second = engine.evaluate_sync({"request": {"uid": "b"}})
    assert [v.message for v in first.violations] == ["uid a"]
    assert [v.message for v in second.violations] == ["uid b"]


def test_a_time_dependent_input_is_part_of_the_key(tmp_path: Path) -> None:
    root = _library(
        tmp_path,
        'deny contains {"rule": "stale", "message": "stale usage"} if '
        "input.tenant.carbon.usageAgeSeconds > 3600\n",
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    fresh = {"request": {"uid": "1"}, "tenant": {"carbon": {"usageAgeSeconds": 3599}}}
    stale = {"request": {"uid": "2"}, "tenant": {"carbon": {"usageAgeSeconds": 3601}}}
    assert engine.evaluate_sync(fresh).allowed
    assert not engine.evaluate_sync(stale).allowed
    assert engine.evaluate_sync(fresh).allowed


def test_a_library_calling_a_clock_gets_no_cache(tmp_path: Path) -> None:
    root = _library(
        tmp_path, 'deny contains {"rule": "r", "message": "late"} if time.now_ns() > input.deadline\n'
    )
    assert EmbeddedEngine(load_library(root), _deny).cache is None


def test_a_clock_called_through_an_index_of_its_name_gets_no_cache(tmp_path: Path) -> None:
    # regorus calls time["now_ns"]() as time.now_ns(): cached, the second decision would have been
    # the first one again, its time included
    root = _library(
        tmp_path,
        'deny contains {"rule": "r", "message": sprintf("at %d", [time["now_ns"]()])} if true\n',
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.cache is None
    first, second = (engine.evaluate_sync({"request": {"uid": "1"}}) for _ in range(2))
    assert first.violations[0].message != second.violations[0].message


@pytest.mark.parametrize(
    "call",
    [
        'time["now_ns"]()',
        'rand["intn"]("k", 10)',
        'uuid["rfc4122"]("k")',
        'opa["runtime"]()',
        'http["send"]({"method": "GET", "url": input.url})',
        'io.jwt["decode_verify"](input.t, {})',
        'crypto["x509"]["parse_and_verify_certificates"](input.c)',
        'time\n["now_ns"]()',
    ],
)
def test_non_deterministic_builtins_named_through_an_index_are_not_cacheable(call: str) -> None:
    assert not cacheable([f"x := {call}"])


@pytest.mark.parametrize(
    "text", ['x := input.time["a"]', "x := y.rand[0]", 'x := runtime["a"]', "x := times[0]"]
)
def test_fields_and_other_names_indexed_stay_cacheable(text: str) -> None:
    assert cacheable([text])


def test_the_shipped_library_is_cacheable() -> None:
    """By its text and by its tree (the kept analysis the engine uses for it skips the tree)."""
    from guard.policy.cache import calls_non_deterministic
    from guard.policy.embedded import new_regorus_engine
    from guard.policy.reads import referenced_names

    library = load_library()
    assert cacheable(m.text for m in library.modules())
    engine = EmbeddedEngine(library, _deny)
    tree = new_regorus_engine(library.modules(), engine.combined).get_ast_as_json()
    assert not calls_non_deterministic(referenced_names(tree))
    assert engine.cache is not None


@pytest.mark.parametrize(
    "body",
    [
        'x := time["now_ns"]()',
        "x := time.now_ns()",
        'x := rand["intn"]("k", 10)',
        'x := uuid.rfc4122("k")',
        "x := opa.runtime()",
        "y := v if {\n  v := input.t with input.t as time.now_ns()\n}",
    ],
)
def test_a_non_deterministic_builtin_in_the_tree_gets_no_cache_whatever_the_text_check_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    """Behind the text's check, the syntax tree's: every reference's dotted name, however the
    call is written. With the text check made to pass, the tree's still keeps the cache off."""
    from guard.policy import embedded

    root = _library(tmp_path, body + '\ndeny contains {"rule": "r", "message": "m"} if input.n > 1\n')
    monkeypatch.setattr(embedded, "cacheable", lambda _texts: True)
    embedded._READS.clear()
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.cache is None and engine.template_cache is None
    assert not engine.evaluate_sync({"n": 2}).allowed and engine.evaluate_sync({"n": 0}).allowed


def test_a_deterministic_library_keeps_its_cache_through_the_tree_check(tmp_path: Path) -> None:
    from guard.policy import embedded

    root = _library(tmp_path, 'x := time.parse_rfc3339_ns(input.t)\ndeny contains "late" if x > 5\n')
    embedded._READS.clear()
    assert EmbeddedEngine(load_library(root), _deny).cache is not None


@pytest.mark.parametrize(
    ("text", "reads"),
    [
        ("x := input.request.namespace", False),
        ("x := input.request.uid", True),
        ("x := input . request . uid", True),
        ("x := input", True),
        ("walk(input, [p, v])", True),
        ("r := input.request\ny := r[k]", True),
        ("import input.request", True),
        ('x := input.request["u" + "id"]', True),
        ('x := object.get(input, ["tenant", "name"], "")', False),
        ('x := object.get(input, ["request", "uid"], "")', True),
        ("# the input as a whole, its uid\nx := input.workload.name", False),
        ('x := "#"; y := input.request', True),
        ('msg := "uid"', True),  # the word anywhere outside comments: conservative
    ],
)
def test_what_counts_as_reading_the_uid(text: str, reads: bool) -> None:
    assert reads_uid([text]) is reads


def test_comments_are_removed_outside_strings_only() -> None:
    assert without_comments('a := "x # y" # note\nb := `r#` # c\n') == 'a := "x # y" \nb := `r#` \n'
    assert without_comments('a := "q\\" # still a string"') == 'a := "q\\" # still a string"'
    assert not cacheable(['x := rand.intn("k", 10)']) and cacheable(["x := input.a"])


def _without_comments_by_hand(text: str) -> str:
    """The character loop ``without_comments`` replaced: the oracle its regex must agree with."""
    out, quote, i = [], "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                out.append(text[i : i + 2])
                i += 2
                continue
            quote = "" if c == quote else quote
        elif c in '"`':
            quote = c
        elif c == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def test_comments_are_removed_as_the_character_loop_did() -> None:
    """Unterminated strings, escapes at the end, newlines in strings, raw strings: 5,000 texts
    of the characters that matter, and the shipped library."""
    import random

    from guard.policy.library import load_library

    rng = random.Random(16)
    alphabet = ['"', "`", "\\", "#", "\n", "a", " "]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(5000)]
    texts += [m.text for m in load_library().modules()]
    for text in texts:
        assert without_comments(text) == _without_comments_by_hand(text), repr(text)


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = DecisionCache(2, ignore_uid=True)
    keys = [cache.key({"request": {"uid": str(i)}, "n": i}) for i in range(3)]
    assert cache.key({"request": {"uid": "x"}, "n": 0}) == keys[0]
    decisions = [Decision(violations=(), policies=(str(i),)) for i in range(3)]
    cache.put(keys[0], decisions[0])
    cache.put(keys[1], decisions[1])
    assert cache.get(keys[0]) is decisions[0]  # 0 is now the most recent
    cache.put(keys[2], decisions[2])
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is decisions[0] and cache.get(keys[2]) is decisions[2]


def _renamed(document: dict[str, Any], name: str, uid: str) -> dict[str, Any]:
    out = copy.deepcopy(document)
    out["workload"]["name"] = out["request"]["name"] = name
    out["request"]["uid"] = uid
    return out


def test_a_replicaset_s_new_pod_is_evaluated_on_the_rules_reading_its_name_only() -> None:
    engine = EmbeddedEngine(load_library(), _deny)
    uncached = EmbeddedEngine(load_library(), _deny, cache_size=0)
    templates = engine.template_cache
    assert templates is not None
    volatile = {(q[0], r) for q in engine._volatile_queries for r in q[1]}
    # the rules that put the workload's name in their messages, and no others: the warn sets of
    # gpu.products and tenancy.isolation do not, though their deny sets do
    assert volatile == {
        ("carbon.budget", "deny"),
        ("carbon.budget", "warn"),
        ("gpu.products", "deny"),
        ("gpu.quota", "deny"),
        ("tenancy.isolation", "deny"),
        ("tenancy.node_pools", "deny"),
    }
    every = {(p.name, r) for p in engine.library.policies for r in p.rules}
    assert templates.rules == every - volatile
    document = example_input()
    document["workload"]["gpu"]["total"] = 99  # over quota: messages naming the pod
    # a warning of a steady rule for the container (tenancy.isolation's warn set)
    document["workload"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    for i in range(4):
        pod = _renamed(document, f"llama-server-7d9f8c6b5-{i:05d}", f"uid-{i}")
        decision = engine.evaluate_sync(pod)
        assert decision == uncached.evaluate_sync(pod)
        assert any(pod["workload"]["name"] in v.message for v in decision.violations)
        assert any(v.rule == "privilege_escalation" for v in decision.violations)
    assert (templates.hits, templates.misses) == (3, 1)


def _counting(engine: EmbeddedEngine, monkeypatch: pytest.MonkeyPatch) -> list[list[str] | None]:
    """The queries of each evaluation ``engine`` makes from now on (None: all of them)."""
    calls: list[list[str] | None] = []
    evaluate = engine._evaluate_text

    def counted(text: bytes, queries: Any = None) -> dict[str, Any]:
        calls.append(None if queries is None else [q[2] for q in queries])
        return evaluate(text, queries)

    monkeypatch.setattr(engine, "_evaluate_text", counted)
    return calls


def test_a_replicaset_s_pods_after_the_first_evaluate_only_what_found_something(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = EmbeddedEngine(load_library(), _deny)
    uncached = EmbeddedEngine(load_library(), _deny, cache_size=0)
    # every rule naming the pod only prints its name: once a template's first pod found nothing
    # there, its next pods find nothing either, whatever their names
    assert engine._printing == frozenset(range(len(engine._volatile_queries)))
    calls = _counting(engine, monkeypatch)
    allowed = example_input()
    for i in range(4):
        pod = _renamed(allowed, f"llama-server-7d9f8c6b5-{i:05d}", f"uid-{i}")
        assert engine.evaluate_sync(pod) == uncached.evaluate_sync(pod)
    assert calls == [None]  # the first pod only: no Rego for the next three
    # a template over quota: gpu.quota's deny finds something, and is asked again for every pod
    # (its message names each); the other queries naming the pod are not
    calls.clear()
    over = copy.deepcopy(allowed)
    over["workload"]["gpu"]["total"] = 99
    for i in range(3):
        pod = _renamed(over, f"llama-server-5c4b3a291-{i:05d}", f"uid-over-{i}")
        decision = engine.evaluate_sync(pod)
        assert decision == uncached.evaluate_sync(pod)
        assert any(pod["workload"]["name"] in v.message for v in decision.violations)
    assert calls == [None, ["data.guard.gpu.quota.deny"], ["data.guard.gpu.quota.deny"]]
    # a name that is not a string (the allowed pods' template: a volatile field counts as null in
    # it): that the queries found nothing for strings says nothing of it, all of them run
    calls.clear()
    for i in range(2):
        odd = _renamed(allowed, f"odd-{i}", f"uid-odd-{i}")
        odd["request"]["name"] = None
        assert engine.evaluate_sync(odd) == uncached.evaluate_sync(odd)
    assert calls == [[q[2] for q in engine._volatile_queries]] * 2


def _mutations(document: dict[str, Any], rng: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    choice = rng.randrange(7)
    if choice == 0:
        out["workload"]["name"] = rng.choice(["a", "b", "llama-server", ""])
    elif choice == 1:
        out["request"]["name"] = rng.choice(["a", "b", None])
    elif choice == 2:
        out["request"]["uid"] = str(rng.randrange(3))
    elif choice == 3 and out["workload"].get("containers"):
        out["workload"]["containers"][0]["image"] = rng.choice(
            ["x:1", "registry.example.com/y@sha256:" + "1" * 64]
        )
    elif choice == 4:
        out["workload"]["gpu"] = {"extended": rng.randrange(9), "dra": 0, "total": rng.randrange(9)}
    elif choice == 5 and isinstance(out.get("tenant"), dict):
        out["tenant"]["name"] = rng.choice(["team-a", "team-b"])
    else:
        out["request"]["namespace"] = rng.choice(["team-a", "team-b", "default"])
    return out


def test_cached_decisions_equal_uncached_ones_over_random_changes() -> None:
    import random

    library = load_library(default_library_dir())
    samples = [_sample(p) for p in sorted(library.root.rglob("samples/*/*.json"))]
    samples = [
        s for s in samples if isinstance(s.get("workload"), dict) and isinstance(s.get("request"), dict)
    ]
    assert len(samples) > 30
    cached, uncached = (
        EmbeddedEngine(library, _deny, cache_size=64),
        EmbeddedEngine(library, _deny, cache_size=0),
    )
    rng = random.Random(16)
    for _ in range(600):
        document = _mutations(rng.choice(samples), rng)
        assert cached.evaluate_sync(document) == uncached.evaluate_sync(document)
    assert cached.template_cache is not None and cached.template_cache.hits > 50


def test_an_input_the_engine_refuses_fails_as_uncached_when_every_policy_is_cached(tmp_path: Path) -> None:
    from guard.errors import PolicyEngineError

    root = _library(tmp_path, 'deny contains {"rule": "r", "message": "big"} if input.workload.size > 3\n')
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.template_cache is not None and not engine._volatile_queries
    assert engine.evaluate_sync({"workload": {"name": "a", "size": 1}}).allowed
    refused = {"workload": {"name": float("nan"), "size": 1}}  # the same but for its name
    with pytest.raises(PolicyEngineError):
        EmbeddedEngine(load_library(root), _deny, cache_size=0).evaluate_sync(refused)
    with pytest.raises(PolicyEngineError):
        engine.evaluate_sync(refused)


def test_an_input_the_engine_refuses_is_not_cut_down_to_what_the_named_policies_read(tmp_path: Path) -> None:
    from guard.errors import PolicyEngineError

    root = _library(
        tmp_path,
        'deny contains {"rule": "r", "message": input.workload.name} if input.workload.size > 3\n',
    )
    (root / "x/q.rego").write_text(
        'package guard.x.q\n\nwarn contains {"rule": "s", "message": "s"} if input.settings.strict\n'
    )
    engine = EmbeddedEngine(load_library(root), _deny)
    assert [q[0] for q in engine._volatile_queries] == ["x.p"] and engine._volatile_sections == frozenset(
        {"workload"}
    )
    first: dict[str, Any] = {
        "request": {"name": "a"},
        "settings": {"strict": True},
        "workload": {"name": "a", "size": 1},
    }
    assert [v.rule for v in engine.evaluate_sync(first).violations] == ["s"]
    refused = copy.deepcopy(first)
    refused["request"]["name"] = float("inf")  # outside what x.p reads; the template is the same
    with pytest.raises(PolicyEngineError):
        engine.evaluate_sync(refused)


def test_a_policy_reading_the_whole_input_is_always_evaluated(tmp_path: Path) -> None:
    root = _library(tmp_path, 'deny contains {"rule": "r", "message": "n"} if count(input) > 2\n')
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.template_cache is None and engine._volatile_sections is None
    assert engine.evaluate_sync({"a": 1, "b": 2}).allowed
    assert not engine.evaluate_sync({"a": 1, "b": 2, "workload": {"name": "x"}}).allowed


def test_a_library_too_deep_to_analyse_is_evaluated_whole_on_every_new_input(tmp_path: Path) -> None:
    terms = " +\n".join(["input.n"] * 300)  # a syntax tree deeper than the parsers read
    root = _library(tmp_path, f'deny contains {{"rule": "r", "message": "big"}} if {terms} > 3\n')
    engine = EmbeddedEngine(load_library(root), _deny)
    assert engine.template_cache is None and engine.reads == {"x.p": {()}}
    assert engine.evaluate_sync({"n": 0}).allowed
    assert not engine.evaluate_sync({"n": 1}).allowed


def _documents() -> list[dict[str, Any]]:
    """Inputs of every shape the engine is given: the library's samples (plain JSON), the base
    example built as admission builds it (its config's sections as ``JsonConstant``s), and odd ones."""
    library = load_library(default_library_dir())
    documents = [_sample(p) for p in sorted(library.root.rglob("samples/*/*.json"))[:40]]
    built = example_input()
    over = copy.deepcopy(built)  # plain copies of the constants: serialized as any dict
    over["workload"]["gpu"]["total"] = 99
    odd: dict[Any, Any] = {"request": {"uid": "u", "name": None}, 1: [1.5, None, "é\u2028"], "x": {2: "y"}}
    return [*documents, built, over, odd, {}, {"workload": "not an object"}]


def test_the_input_text_is_put_together_as_one_serialization_makes_it() -> None:
    import pydantic_core

    from guard.policy.cache import JsonConstant, document_json, sent_json, split_volatile, steady_keys

    built = example_input()
    assert type(built["cluster"]) is JsonConstant and type(built["settings"]) is JsonConstant
    assert all(type(a) is JsonConstant for a in built["artifacts"])
    documents = _documents()
    texts: dict[bytes, bytes] = {}  # template key -> the steady input's JSON
    for document in documents:
        assert document_json(document) == pydantic_core.to_json(document)
        keys = steady_keys(document, ignore_uid=False)
        text = pydantic_core.to_json(split_volatile(document)[0])
        # one key, one steady input: two inputs with a key alike are alike but for their names
        assert texts.setdefault(keys.template, text) == text
        assert steady_keys(copy.copy(document), ignore_uid=False) == keys  # the same parts, the same keys
        assert sent_json(document, keys) == pydantic_core.to_json(document)
        for only in (frozenset({"request", "cluster"}), frozenset({"artifacts"}), frozenset()):
            part = {k: v for k, v in document.items() if k in only}
            assert sent_json(document, keys, only) == pydantic_core.to_json(part)


def test_the_engine_is_given_the_text_of_the_input_or_of_the_parts_it_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    engine = EmbeddedEngine(load_library(), _deny)
    texts: list[tuple[bytes, Any]] = []
    evaluate = engine._evaluate_text

    def recorded(text: bytes, queries: Any = None) -> dict[str, Any]:
        texts.append((text, queries))
        return evaluate(text, queries)

    monkeypatch.setattr(engine, "_evaluate_text", recorded)
    over = example_input()
    over["workload"]["gpu"]["total"] = 99  # gpu.quota's deny names each pod: asked for each
    pods = [_renamed(over, f"llama-server-5c4b3a291-{i:05d}", f"uid-{i}") for i in range(3)]
    for pod in pods:
        engine.evaluate_sync(pod)
    assert [q is None for _, q in texts] == [True, False, False]
    # the first pod whole, as sent (the library reads no uid: the cache sends it as ""), the next
    # ones only the sections the query reads, each with that pod's own name
    assert engine.cache is not None
    assert json.loads(texts[0][0]) == json.loads(json.dumps(engine.cache.sent(pods[0])))
    for (text, _), pod in zip(texts[1:], pods[1:], strict=True):
        part = json.loads(text)
        assert set(part) < set(pod) and part["workload"]["name"] == pod["workload"]["name"]
        sent = json.loads(json.dumps(engine.cache.sent(pod)))
        assert part == {k: v for k, v in sent.items() if k in part}


def test_the_config_s_sections_are_built_once_and_carry_their_text() -> None:
    import pydantic_core

    from guard.config import parse_config
    from guard.policy.cache import JsonConstant, JsonConstantList
    from guard.policy.examples import CONFIG
    from guard.policy.input import InputConstants

    config = parse_config(CONFIG)
    constants = InputConstants(config)
    for section in (constants.cluster, constants.settings):
        assert type(section) is JsonConstant and section.json == pydantic_core.to_json(dict(section))
    budgeted = [t for t in config.tenants if t.carbon is not None]
    plain = [t for t in config.tenants if t.carbon is None]
    assert budgeted and plain
    # a tenant without a carbon budget is constant, the same object every time; one with a
    # budget is built for every request (its usage may have changed)
    namespace = plain[0].namespaces[0]
    first, others = constants.tenant(namespace, None)
    assert type(first) is JsonConstant and constants.tenant(namespace, None)[0] is first
    assert type(others) is JsonConstantList and others.json == pydantic_core.to_json(list(others))
    budget = constants.tenant(budgeted[0].namespaces[0], None)[0]
    assert type(budget) is dict and budget["carbon"] is not None


def test_a_namespace_s_tenant_is_asked_once_and_answered_alike() -> None:
    from guard.config import parse_config
    from guard.policy import input as inputs
    from guard.policy.input import InputConstants, tenant_input

    config = parse_config(
        {
            "tenants": [
                {"name": "exact", "namespaces": ["team-a"]},
                {"name": "glob", "namespaces": ["team-*"]},
                {"name": "budget", "namespaces": ["green-*"], "carbon": {"budgetKgCO2e": 5}},
            ]
        }
    )
    constants = InputConstants(config)
    names = ["team-a", "team-b", "green-1", "nobody", "", "team-a", "x" * 300]
    for _ in range(2):  # the second round from the memo
        for namespace in names:
            tenant = config.tenant_for(namespace)
            found, others = constants.tenant(namespace, None)
            if tenant is None:
                assert found is None and [o["name"] for o in others] == ["exact", "glob", "budget"]
                continue
            assert found == tenant_input(tenant, config)
            assert [o["name"] for o in others] == [t.name for t in config.tenants if t is not tenant]
    assert "x" * 300 not in constants._tenant_of  # too long to be a namespace: not kept
    for i in range(inputs._NAMESPACES_KEPT + 10):
        constants.tenant(f"team-{i}", None)
    assert len(constants._tenant_of) <= inputs._NAMESPACES_KEPT
    assert constants.tenant("team-a", None)[0] == tenant_input(config.tenants[0], config)


def test_a_constant_refuses_changes_and_its_copies_are_plain_and_keyed_alike() -> None:
    import pickle

    from guard.policy.cache import JsonConstant, JsonConstantList, steady_keys

    document = example_input()
    cluster, others = document["cluster"], document["otherTenants"]
    assert type(cluster) is JsonConstant and type(others) is JsonConstantList
    changes: list[Callable[[], object]] = [
        lambda: cluster.__setitem__("x", 1),
        lambda: cluster.update(x=1),
        lambda: cluster.pop("migProfiles"),
        lambda: cluster.setdefault("x", 1),
        lambda: others.append({}),
        lambda: others.__setitem__(0, {}),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change()
    for copied in (copy.copy(cluster), copy.deepcopy(cluster), pickle.loads(pickle.dumps(cluster))):
        assert type(copied) is dict and copied == cluster
        copied["gridIntensityGPerKWh"] = 1  # a copy changes, and is judged as changed
    plain = copy.deepcopy(document)
    assert type(plain["cluster"]) is dict
    assert steady_keys(plain, ignore_uid=True)[:2] == steady_keys(document, ignore_uid=True)[:2]
    plain["cluster"]["gridIntensityGPerKWh"] = 1
    assert steady_keys(plain, ignore_uid=True).template != steady_keys(document, ignore_uid=True).template
