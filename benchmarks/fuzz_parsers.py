"""The long fuzzing run: at least 10^6 generated inputs across guard's parsers of untrusted bytes.

Every target of ``guard.testing.fuzzing.TARGETS`` (AdmissionReview, both reference grammars,
descriptor, manifest, the fallback referrers index, an OCI layout's index.json, Sigstore bundle,
DSSE envelope, in-toto statement past the signature check, SBOM, the other predicates, policy
input, guard.untrusted) gets its share of mutated inputs, run in worker processes. Prints the
inputs run, accepted and refused (a GuardError) per parser, the total, and every crash (anything
else that escaped) with the input that caused it; exit 1 when there was one.

    python benchmarks/fuzz_parsers.py                 # 1,000,000 inputs, all cores
    python benchmarks/fuzz_parsers.py --total 50000 --jobs 1 --seed 7
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guard.testing.fuzzing import TARGETS, Crash, Mutator, run_one

# Inputs per parser out of 10^6, by cost: a reference parses in ~20 us, an SBOM is checked
# against the CycloneDX schema in ~10 ms; every parser still gets thousands of inputs and the
# whole run stays within minutes on two cores. --total scales these shares.
SHARES = {
    "reference-cli": 200_000,
    "reference-policy": 200_000,
    "descriptor": 120_000,
    "dsse": 100_000,
    "bundle": 100_000,
    "untrusted": 80_000,
    "index-fallback": 60_000,
    "manifest": 50_000,
    "admission-review": 40_000,
    "policy-input": 20_000,
    "index-layout": 10_000,
    "predicate": 10_000,
    "statement": 8_000,
    "sbom": 2_000,
}
CHUNK = 2000


@dataclass
class Tally:
    runs: int = 0
    accepted: int = 0
    crashes: list[tuple[str, bytes]] = field(default_factory=list)
    seconds: float = 0.0


MEMORY_LIMIT = 3 << 30  # per worker: a parser that blows up raises MemoryError (a crash), not the OOM killer


def _limit_memory() -> None:
    import resource  # noqa: PLC0415

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _chunk(args: tuple[str, int, int]) -> tuple[str, Tally]:
    name, seed, count = args
    target = TARGETS[name]
    seeds = target.seeds()
    mutator = Mutator(seed)
    tally = Tally()
    started = time.perf_counter()
    for _ in range(count):
        data = mutator.input_for(mutator.rng.choice(seeds))
        try:
            tally.accepted += run_one(target, data)
        except Crash as crash:
            if len(tally.crashes) < 5:
                tally.crashes.append((str(crash)[:300], data[:400]))
            else:
                tally.crashes.append(("", b""))
        tally.runs += 1
    tally.seconds = time.perf_counter() - started
    return name, tally


def plan(total: int, seed: int) -> list[tuple[str, int, int]]:
    weights = {name: SHARES.get(name, 10_000) for name in TARGETS}
    scale = total / sum(weights.values())
    counts = {name: max(1, round(w * scale)) for name, w in weights.items()}
    counts[max(counts, key=lambda n: counts[n])] += total - sum(counts.values())
    work = []
    for index, (name, count) in enumerate(counts.items()):
        for start in range(0, count, CHUNK):
            work.append((name, seed * 1_000_003 + index * 10_007 + start, min(CHUNK, count - start)))
    # the slow parsers first, so the pool ends with short chunks
    work.sort(key=lambda item: weights[item[0]])
    return work


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--total", type=int, default=1_000_000, help="inputs in all (default 10^6)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generator (reproducible runs)")
    args = parser.parse_args()

    work = plan(args.total, args.seed)
    tallies = {name: Tally() for name in TARGETS}
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs, initializer=_limit_memory) as pool:
        for name, tally in pool.imap_unordered(_chunk, work):
            total = tallies[name]
            total.runs += tally.runs
            total.accepted += tally.accepted
            total.crashes += tally.crashes
            total.seconds += tally.seconds
    elapsed = time.perf_counter() - started

    print(f"{'parser':<18}{'inputs':>11}{'accepted':>10}{'refused':>10}{'crashes':>9}{'us/input':>10}")
    for name, t in tallies.items():
        per = t.seconds / t.runs * 1e6 if t.runs else 0.0
        refused = t.runs - t.accepted - len(t.crashes)
        print(f"{name:<18}{t.runs:>11,}{t.accepted:>10,}{refused:>10,}{len(t.crashes):>9}{per:>10.0f}")
    runs = sum(t.runs for t in tallies.values())
    crashes = sum(len(t.crashes) for t in tallies.values())
    print(
        f"{'total':<18}{runs:>11,}{'':>20}{crashes:>9}"
        f"   ({elapsed:.0f} s, {args.jobs} jobs, seed {args.seed})"
    )
    for t in tallies.values():
        for message, data in t.crashes:
            if message:
                print(f"CRASH {message}\n      input: {data!r}")
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
