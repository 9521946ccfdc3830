"""Per-admission evaluation time of the whole policy library with the embedded engine.

Evaluates typical inputs (the compliant example and a few denied samples: AI workloads with a
GPU and a model) with the full library through ``EmbeddedEngine.evaluate_sync`` (serialize the
input, load it into regorus, one query, build the Decision), then, in the same run:

- the same inputs against a trivial one-rule library (the baseline of the ratio);
- a plain pod (one signed image, no GPU, no model): most admissions in a cluster;
- the parts of an admission: serializing the input, loading it into regorus (``set_input_json``),
  and the library's *floor*: a library with the same packages and the same number of ``deny`` /
  ``warn`` bodies, each failing on its first expression (what the interpreter costs before any
  policy does work), evaluated rule by rule as the engine does and as one aggregated query;
- scaling: the library with every policy twice and four times (copies under other package names,
  doing the same work), and the marginal cost of one policy from it; each policy's own cost (its
  ``deny`` and ``warn`` rules on an input already loaded), the dearest first;
- the policy part of the per-container cost: the compliant example with 8 sidecars more (the same
  signed image, no GPU), (p50 with 9 containers - p50 with 1) / 8;
- a decision from the engine's decision cache (the same input again, another request uid);
- real OPA (OPA's Go library in process, opa-golib-python-bindings) on the same library and inputs,
  when installed: the side-by-side figure;
- for information, regorus's compiled path (RVM: ``Program.compile_from_modules`` + ``Rvm``),
  which guard does NOT use: it disagrees with the interpreter on some samples (counted here) and
  stops after 25,000 instructions, a limit the Python bindings cannot raise.

Prints p50 / p99 / min per admission and the ratio against the trivial library. It states no goal
of its own: the admission goal (server CPU per warm request, where the decision cache and the rest
of the pipeline count too) is measured by ``webhook_load.py``. Timings on a shared machine are
noisy: compare ratios and minimums.

    .venv/bin/python benchmarks/policy_eval.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydantic_core

from guard.policy.embedded import AGGREGATE_QUERY, EmbeddedEngine, aggregate_module, new_regorus_engine
from guard.policy.examples import case, example_input
from guard.policy.input import build_input_for_object
from guard.policy.library import PolicyLibrary, default_library_dir, load_library

TRIVIAL = """package guard.bench.trivial

deny contains {"rule": "trivial", "message": "x", "severity": "info"} if input.never == true
"""

DENIED = [
    "gpu/samples/denied/fit--model_exceeds_gpu_memory.json",
    "tenancy/samples/denied/registries--cross_tenant_reference.json",
    "supply_chain/samples/denied/signature--signature_invalid.json",
    "provenance/samples/denied/personal_data--personal_data_not_allowed.json",
]

Input = dict[str, Any]


def _inputs() -> list[Input]:
    root = default_library_dir()
    return [example_input()] + [json.loads((root / p).read_text()) for p in DENIED]


def _plain_pod() -> Input:
    """A web server pod: one signed container image, no GPU, no model."""
    c = case(lambda _: None)
    container = c.server
    for key in ("resources", "volumeMounts"):
        container.pop(key)
    for key in ("volumes", "nodeSelector"):
        c.pod.pop(key)
    c.obj["metadata"]["name"] = "web"
    template = c.obj["spec"]["template"]
    return build_input_for_object(
        c.obj, c.pod, c.artifacts()[:1], c.config_model(), template_metadata=template.get("metadata")
    )


def _floor_modules(library: PolicyLibrary) -> list[tuple[str, str]]:
    """Every policy's package with as many deny / warn bodies as it has, all failing at once."""
    modules = []
    for p in library.policies:
        heads = re.findall(r"^(deny|warn) contains", p.file.text, re.MULTILINE)
        body = "\n".join(f"{h} contains 1 if input.never" for h in heads)
        modules.append((f"{p.name}.rego", f"package {p.package}\n\n{body}\n"))
    return modules


def _time(fn: Callable[[Input], object], inputs: Sequence[Input], rounds: int) -> list[float]:
    for doc in inputs:  # warm up
        fn(doc)
    samples = []
    for _ in range(rounds):
        for doc in inputs:
            start = time.perf_counter_ns()
            fn(doc)
            samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _rvm(modules: list[tuple[str, str]]) -> Any:
    import regorus  # noqa: PLC0415

    program = regorus.Program.compile_from_modules("{}", modules, [AGGREGATE_QUERY])
    vm = regorus.Rvm()
    vm.load_program(program)
    return vm


def _rvm_disagreements(engine: EmbeddedEngine, vm: Any) -> tuple[int, int]:
    """(samples where the RVM's raw result differs from the interpreter's or fails, samples)."""
    root = engine.library.root
    docs = [json.loads(p.read_text()) for p in sorted(root.glob("*/samples/*/*.json"))]
    bad = 0
    for doc in docs:
        vm.set_input_json(json.dumps(doc))
        try:
            same = json.loads(vm.execute()) == engine.evaluate_raw(doc)
        except RuntimeError:
            same = False
        bad += not same
    return bad, len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()

    library = load_library()
    # no decision cache: every round evaluates (the cache has its own row)
    full = EmbeddedEngine(library, lambda _: "deny", cache_size=0)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench").mkdir()
        (Path(tmp) / "bench" / "trivial.rego").write_text(TRIVIAL)
        trivial = EmbeddedEngine(load_library(Path(tmp)), lambda _: "deny", cache_size=0)
        scaled = {
            n: EmbeddedEngine(_multiplied(library, Path(tmp), n), lambda _: "deny", cache_size=0)
            for n in (2, 4)
        }
    inputs = _inputs()
    plain = [_plain_pod()]
    size = sum(len(json.dumps(d)) for d in inputs) / len(inputs)
    texts = {id(d): pydantic_core.to_json(d).decode() for d in inputs}

    full_us = _time(full.evaluate_sync, inputs, args.rounds)
    trivial_us = _time(trivial.evaluate_sync, inputs, args.rounds)
    plain_us = _time(full.evaluate_sync, plain, args.rounds * len(inputs))
    scaled_us = {n: _time(e.evaluate_sync, inputs, args.rounds // 2) for n, e in scaled.items()}
    cached = EmbeddedEngine(library, lambda _: "deny")
    cached_us = _time(lambda d: cached.evaluate_sync(_new_uid(d)), inputs, args.rounds)
    each_us = _per_policy(full, inputs, args.rounds // 4)
    one_us = _time(full.evaluate_sync, [example_input()], args.rounds)
    nine_us = _time(full.evaluate_sync, [_with_sidecars(example_input(), 8)], args.rounds)
    serialize_us = _time(lambda d: pydantic_core.to_json(d).decode(), inputs, args.rounds)
    regorus = full._engine()
    load_us = _time(lambda d: regorus.set_input_json(texts[id(d)]), inputs, args.rounds)

    # the two levers measured and not taken (see docs/development/performance.md): the whole
    # library as one aggregated query, and the config's parts read from data instead of input
    queries = full._queries

    def rule_by_rule(d: Input) -> object:
        regorus.set_input_json(texts[id(d)])
        return [regorus.eval_rule_as_json(q) for _, _, q in queries]

    rule_by_rule_us = _time(rule_by_rule, inputs, args.rounds)
    aggregated = new_regorus_engine(library.modules(), [("guard_engine.rego", aggregate_module(library))])
    aggregated_us = _time(
        lambda d: (aggregated.set_input_json(texts[id(d)]), aggregated.eval_rule_as_json(AGGREGATE_QUERY)),
        inputs,
        args.rounds,
    )
    from_data, from_data_same = _constants_as_data(full, inputs)
    from_data_us = _time(from_data, inputs, args.rounds)

    floor_modules = [*_floor_modules(library), ("guard_engine.rego", aggregate_module(library))]
    floor = new_regorus_engine([], floor_modules)
    floor.set_input_json(texts[id(inputs[0])])
    paths = [f"data.{p.package}.{r}" for p in library.policies for r in p.rules]
    floor_us = _time(lambda _: [floor.eval_rule_as_json(q) for q in paths], inputs, args.rounds)
    floor_agg_us = _time(lambda _: floor.eval_rule_as_json(AGGREGATE_QUERY), inputs, args.rounds)

    modules = [(str(m.path), m.text) for m in library.modules()]
    vm = _rvm([*modules, ("guard_engine.rego", aggregate_module(library))])
    rvm_us = _time(lambda d: (vm.set_input_json(texts[id(d)]), vm.execute()), inputs, args.rounds)
    floor_vm = _rvm(floor_modules)
    floor_vm.set_input_json(texts[id(inputs[0])])
    floor_rvm_us = _time(lambda _: floor_vm.execute(), inputs, args.rounds)
    bad, total = _rvm_disagreements(full, vm)
    opa_us = _opa_in_process(library, inputs, args.rounds)

    print(
        f"policy library: {len(library.policies)} policies; {len(inputs)} typical inputs "
        f"(~{size / 1024:.1f} KiB JSON each); {args.rounds} rounds"
    )
    rows = (
        ("whole library, decision", full_us),
        ("plain pod (no GPU/model)", plain_us),
        ("trivial one-rule policy", trivial_us),
        (f"library x2 ({2 * len(library.policies)} policies)", scaled_us[2]),
        (f"library x4 ({4 * len(library.policies)} policies)", scaled_us[4]),
        ("decision cache hit", cached_us),
        ("  serialize input", serialize_us),
        ("  load input (regorus)", load_us),
        ("  library floor (no work)", floor_us),
        ("  same, as one query", floor_agg_us),
        ("library, rule by rule (raw)", rule_by_rule_us),
        ("  as one aggregated query", aggregated_us),
        ("  constants from data", from_data_us),
        ("RVM: load + execute", rvm_us),
        ("RVM: library floor", floor_rvm_us),
        *((("real OPA in process, library", opa_us),) if opa_us else ()),
    )
    for label, values in rows:
        print(
            f"  {label:27} p50 {_pct(values, 50):8.1f} us   p99 {_pct(values, 99):8.1f} us"
            f"   min {min(values):8.1f} us"
        )
    for label, stat in (("p50", lambda v: _pct(v, 50)), ("min", min)):
        one = (stat(scaled_us[4]) - stat(full_us)) / (3 * len(library.policies))
        x2, x4 = (stat(scaled_us[n]) / stat(full_us) for n in (2, 4))
        print(f"  one policy more (x1 -> x4, {label}): {one:.1f} us; x2 / x1 {x2:.2f}, x4 / x1 {x4:.2f}")
    per_container = (_pct(nine_us, 50) - _pct(one_us, 50)) / 8
    print(
        f"  one container more (policies only, 1 -> 9 containers, p50): {per_container:.1f} us "
        f"({_pct(one_us, 50):.0f} -> {_pct(nine_us, 50):.0f} us)"
    )
    dearest = sorted(each_us.items(), key=lambda item: -item[1])
    print("  each policy's own rules, p50 over the typical inputs (the dearest first):")
    for name, cost in dearest:
        print(f"    {name:32} {cost:7.1f} us")
    ratio = _pct(full_us, 50) / _pct(trivial_us, 50)
    print(f"  ratio whole library / trivial (p50): {ratio:.1f}x")
    print(f"  RVM (not used by guard) disagrees with the interpreter on {bad} of {total} samples")
    for label, values in (("as one aggregated query", aggregated_us), ("constants from data", from_data_us)):
        print(
            f"  {label} / rule by rule: p50 {_pct(values, 50) / _pct(rule_by_rule_us, 50):.2f}x, "
            f"min {min(values) / min(rule_by_rule_us):.2f}x (levers not taken: > 1 is slower)"
        )
    print(f"  constants from data give the same sets: {from_data_same()}")
    if opa_us:
        print(
            f"  real OPA / guard (p50): {_pct(opa_us, 50) / _pct(full_us, 50):.2f}x   "
            f"(p99): {_pct(opa_us, 99) / _pct(full_us, 99):.2f}x   (OPA: evaluation of data.guard only, "
            "no Decision built)"
        )
    else:
        print("  real OPA in process: opa-golib-python-bindings not available, row skipped")


CONSTANTS = ("tenant", "otherTenants", "cluster", "settings")


def _constants_as_data(
    engine: EmbeddedEngine, inputs: Sequence[Input]
) -> tuple[Callable[[Input], object], Callable[[], bool]]:
    """The issue's lever "constants as engine data", measured: the library with every read of
    ``input.tenant`` / ``otherTenants`` / ``cluster`` / ``settings`` rewritten to read
    ``data.guard_constants`` (loaded once with ``add_data_json``), given inputs without them
    (a third less to parse). Returns an evaluation (serialize, load, the same queries) and a check
    that it gives the same raw result on ``inputs``. Not what guard runs: regorus 0.13 reads a
    ``data`` path slower than an ``input`` path, more than the shorter input saves."""
    import regorus  # noqa: PLC0415

    def rewrite(text: str) -> str:
        text = re.sub(r"\binput\.(tenant|otherTenants|cluster|settings)\b", r"data.guard_constants.\1", text)
        return text.replace('object.get(input, ["tenant"', 'object.get(data.guard_constants, ["tenant"')

    modules = [(str(m.path), rewrite(m.text)) for m in engine.library.modules()] + list(engine.combined)
    queries = engine._queries

    def new_engine(doc: Input) -> Any:
        e = regorus.Engine()
        for name, text in modules:
            e.add_policy(name, text)
        e.add_data_json(json.dumps({"guard_constants": {k: doc[k] for k in CONSTANTS}}))
        return e

    engines = {id(d): new_engine(d) for d in inputs}  # one per input: each has its own constants
    smaller = {
        id(d): pydantic_core.to_json({k: v for k, v in d.items() if k not in CONSTANTS}).decode()
        for d in inputs
    }

    def evaluate(doc: Input) -> object:
        e = engines[id(doc)]
        e.set_input_json(smaller[id(doc)])
        return [e.eval_rule_as_json(path) for _, _, path in queries]

    reference = engine._engine()

    def same() -> bool:
        for doc in inputs:
            reference.set_input_json(pydantic_core.to_json(doc).decode())
            if [reference.eval_rule_as_json(path) for _, _, path in queries] != evaluate(doc):
                return False
        return True

    return evaluate, same


def _multiplied(library: PolicyLibrary, tmp: Path, times: int) -> PolicyLibrary:
    """The library with every policy ``times`` times: copies under other package names (the same
    rules, the same work), beside the same helpers."""
    root = tmp / f"x{times}"
    for module in library.helpers:
        target = root / module.path.relative_to(library.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(module.text)
    for p in library.policies:
        path = p.file.path.relative_to(library.root)
        for i in range(times):
            name = path.stem if i == 0 else f"{path.stem}_copy{i}"
            target = root / path.parent / f"{name}.rego"
            target.parent.mkdir(parents=True, exist_ok=True)
            package = f"{p.package.rsplit('.', 1)[0]}.{name}"
            target.write_text(p.file.text.replace(f"package {p.package}\n", f"package {package}\n", 1))
    multiplied = load_library(root)
    expected = times * len(library.policies)
    if len(multiplied.policies) != expected:
        raise SystemExit(f"expected {expected} policies, found {len(multiplied.policies)}")
    return multiplied


def _with_sidecars(document: Input, count: int) -> Input:
    """``document`` with ``count`` CPU-only containers more, running its first container's image."""
    first = document["workload"]["containers"][0]
    sidecars = [
        {
            **first,
            "name": f"sidecar-{i}",
            "volumeMounts": [],
            "gpu": {"requests": {}, "limits": {}, "count": 0, "migProfiles": [], "shared": False},
        }
        for i in range(count)
    ]
    workload = {**document["workload"], "containers": [*document["workload"]["containers"], *sidecars]}
    artifacts = [
        {**a, "usedBy": [*a["usedBy"], *(c["name"] for c in sidecars)]} if a["ref"] == first["image"] else a
        for a in document["artifacts"]
    ]
    return {**document, "workload": workload, "artifacts": artifacts}


def _new_uid(document: Input) -> Input:
    return {**document, "request": {**document["request"], "uid": str(time.perf_counter_ns())}}


def _per_policy(engine: EmbeddedEngine, inputs: Sequence[Input], rounds: int) -> dict[str, float]:
    """Each policy's ``deny`` and ``warn`` rules evaluated on an input already loaded: p50 in us."""
    regorus = engine._engine()
    out: dict[str, list[float]] = {}
    for doc in inputs:
        regorus.set_input_json(pydantic_core.to_json(doc).decode())
        for p in engine.library.policies:
            paths = [f"data.{p.package}.{r}" for r in p.rules]

            def rules(_: Input, paths: list[str] = paths) -> object:
                return [regorus.eval_rule_as_json(q) for q in paths]

            out.setdefault(p.name, []).extend(_time(rules, [doc], rounds))
    return {name: statistics.median(values) for name, values in out.items()}


def _opa_in_process(library: PolicyLibrary, inputs: Sequence[Input], rounds: int) -> list[float]:
    """Real OPA (its Go library in process, guard.testing.opa) evaluating the same library on the
    same inputs: the document query guard's OPA engine sends. Empty when the bindings are absent."""
    from guard.testing.opa import OpaUnavailableError, evaluate_raw, new_opa  # noqa: PLC0415

    try:
        opa = new_opa(library.modules())
    except (ImportError, OpaUnavailableError):
        return []
    try:
        return _time(lambda d: evaluate_raw(opa, d), inputs, rounds)
    finally:
        opa.close()


if __name__ == "__main__":
    main()
