# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Hashing throughput of guard against the machine's limit, measured in the same run.

A model of several files (default 4 x 512 MiB; smaller with --files / --file-mb or the env vars
GUARD_BENCH_FILES / GUARD_BENCH_FILE_MB) is written to a temporary directory and read once so it
sits in the page cache. Then:

- the SHA-256 limit: `openssl dgst -sha256` on one file (single core), times the number of cores;
- guard `files` and `shards` serializations (sha256), and model-signing's default hashing
  (files, sha256), each as a ratio to that limit (goal for guard files mode: >= 0.95);
- blake3: guard against blake3's own limit (hashing an in-memory buffer with all its threads).

Contenders run interleaved, --repeat rounds; each figure is a contender's best round.
Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20


def make_model(root: Path, files: int, file_mb: int) -> int:
    block = os.urandom(MIB)
    for i in range(files):
        with open(root / f"model-{i:05d}-of-{files:05d}.safetensors", "wb") as f:
            for j in range(file_mb):
                # vary each block so no layer can deduplicate
                f.write(j.to_bytes(8, "little") + block[8:])
    (root / "config.json").write_text('{"architectures": ["BenchModel"]}\n')
    return sum(p.stat().st_size for p in root.iterdir())


def warm(root: Path) -> None:
    buf = bytearray(8 * MIB)
    for p in root.iterdir():
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=int(os.environ.get("GUARD_BENCH_FILES", "4")))
    parser.add_argument("--file-mb", type=int, default=int(os.environ.get("GUARD_BENCH_FILE_MB", "512")))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("GUARD_BENCH_REPEAT", "3")))
    parser.add_argument("--shard-mb", type=int, default=128)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the model (default: a temp dir)"
    )
    args = parser.parse_args()

    import blake3

    from guard.signing.hashing import hash_model
    from guard.signing.types import Serialization

    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="guard-bench-", dir=args.dir))
    try:
        total = make_model(tmp, args.files, args.file_mb)
        warm(tmp)
        gib = total / (1 << 30)
        print(
            f"model: {args.files} x {args.file_mb} MiB (+ config.json) = {gib:.2f} GiB in page cache; "
            f"{cores} cores; best of {args.repeat}"
        )

        # Interleaved rounds: every contender runs once per round, and each keeps its best time, so
        # a neighbour's burst of CPU use (the cores may be shared) hits all of them alike.
        sample = next(tmp.glob("*.safetensors"))
        if shutil.which("openssl") is None:
            sys.exit("openssl not found: it is the baseline of this benchmark")
        data = os.urandom(256 * MIB)
        shards = Serialization(method="shards", shard_size=args.shard_mb * MIB)
        contenders: dict[str, Callable[[], object]] = {
            "openssl": lambda: subprocess.run(
                ["openssl", "dgst", "-sha256", str(sample)], check=True, stdout=subprocess.DEVNULL
            ),
            "guard files sha256": lambda: hash_model(tmp, Serialization()),
            "guard shards sha256": lambda: hash_model(tmp, shards),
            "guard files blake3": lambda: hash_model(tmp, Serialization(hash_type="blake3")),
            "blake3 limit": lambda: blake3.blake3(data, max_threads=blake3.blake3.AUTO),
        }
        try:
            import model_signing

            contenders["model-signing default (files sha256)"] = lambda: model_signing.hashing.Config().hash(
                tmp
            )
        except ImportError:
            print("model-signing not installed: skipping its row")
        best = dict.fromkeys(contenders, float("inf"))
        spread: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, fn in contenders.items():
                t0 = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t0
                best[name] = min(best[name], elapsed)
                spread[name].append(elapsed)

        single = sample.stat().st_size / best["openssl"]
        limit = cores * single
        b3_limit = len(data) / best["blake3 limit"]
        print(
            f"openssl dgst -sha256, one core: {single / MIB:8.0f} MiB/s; "
            f"limit {cores} x = {limit / MIB:.0f} MiB/s"
        )
        rows: list[tuple[str, float, float]] = [
            (name, total / best[name], b3_limit if "blake3" in name else limit)
            for name in contenders
            if name not in ("openssl", "blake3 limit")
        ]
        noise = max((max(v) / min(v)) for v in spread.values())
        print(f"noise: the slowest run of a contender took up to {noise:.2f} x its fastest")
        print(f"{'what':40} {'MiB/s':>8} {'ratio to limit':>15}")
        for name, value, ref in rows:
            print(f"{name:40} {value / MIB:8.0f} {value / ref:15.2f}")
        print(f"(blake3's own limit, in-memory with all threads: {b3_limit / MIB:.0f} MiB/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
