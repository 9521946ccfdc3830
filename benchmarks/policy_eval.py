"""Per-admission evaluation time of the whole policy library with the embedded engine.

Evaluates typical inputs (the compliant example and a few denied samples) with the full library
through ``EmbeddedEngine.evaluate_sync`` (serialize the input, one regorus query, build the
Decision), then the same inputs against a trivial one-rule library in the same run, and prints
p50 / p99 per admission and their ratio. Goal: p50 <= 150 us for the library.

    .venv/bin/python benchmarks/policy_eval.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guard.policy.embedded import EmbeddedEngine
from guard.policy.examples import example_input
from guard.policy.library import default_library_dir, load_library

TRIVIAL = """package guard.bench.trivial

deny contains {"rule": "trivial", "message": "x", "severity": "info"} if input.never == true
"""

DENIED = [
    "gpu/samples/denied/fit--model_exceeds_gpu_memory.json",
    "tenancy/samples/denied/registries--cross_tenant_reference.json",
    "supply_chain/samples/denied/signature--signature_invalid.json",
    "provenance/samples/denied/personal_data--personal_data_not_allowed.json",
]


def _inputs() -> list[dict[str, Any]]:
    root = default_library_dir()
    return [example_input()] + [json.loads((root / p).read_text()) for p in DENIED]


Input = dict[str, Any]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()

    library = load_library()
    full = EmbeddedEngine(library, lambda _: "deny")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bench").mkdir()
        (Path(tmp) / "bench" / "trivial.rego").write_text(TRIVIAL)
        trivial = EmbeddedEngine(load_library(Path(tmp)), lambda _: "deny")
    inputs = _inputs()
    size = sum(len(json.dumps(d)) for d in inputs) / len(inputs)

    full_us = _time(full.evaluate_sync, inputs, args.rounds)
    trivial_us = _time(trivial.evaluate_sync, inputs, args.rounds)
    raw_us = _time(full.evaluate_raw, inputs, args.rounds)
    regorus = full._engine()
    texts = {id(d): json.dumps(d) for d in inputs}
    load_us = _time(lambda d: regorus.set_input_json(texts[id(d)]), inputs, args.rounds)

    print(f"policy library: {len(library.policies)} policies; {len(inputs)} typical inputs "
          f"(~{size / 1024:.1f} KiB JSON each); {args.rounds} rounds")
    rows = (
        ("whole library, decision", full_us),
        ("whole library, raw result", raw_us),
        ("trivial one-rule policy", trivial_us),
        ("input load alone", load_us),
    )
    for label, values in rows:
        print(f"  {label:26} p50 {_pct(values, 50):8.1f} us   p99 {_pct(values, 99):8.1f} us"
              f"   min {min(values):8.1f} us")
    ratio = _pct(full_us, 50) / _pct(trivial_us, 50)
    print(f"  ratio whole library / trivial (p50): {ratio:.1f}x")
    goal = 150.0
    verdict = "meets" if _pct(full_us, 50) <= goal else "misses"
    print(f"  goal p50 <= {goal:.0f} us: {verdict}")


if __name__ == "__main__":
    main()
