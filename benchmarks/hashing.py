# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Hashing throughput of guard against the machine's true SHA-256 limit, measured in the same run.

The limit is `openssl speed -multi CORES -bytes 16384 sha256`: every core hashing 16 KiB blocks in
memory, no I/O and no small reads (`openssl dgst` reads in small chunks and reaches only ~75% of it,
so it is not a limit). Three model shapes are written to a temporary directory and read once so
they sit in the page cache:

- several large files (default 4 x 512 MiB),
- one huge file (default 2 GiB),
- many small files (default 2,000 x 64 KiB: tokenizer shards, a diffusers tree).

For each shape: guard in process (`hash_model`, files mode, sha256), guard end to end through the
CLI (`guard sign --key --no-cache`, which hashes, builds and signs the manifest), and model-signing's default
hashing (files, sha256) when it is installed; and the ceiling of any hasher that reads its files
on this machine: a minimal one (walk the directory and stat each file, then open, read into one
page-aligned 1 MiB buffer, hash, close: no checks, no manifest) run at once in one process per
core, each with a share of the files (the largest first, each to the lightest share; one file is
read by one process). The kernel's copy of every byte from the page cache is part of that
ceiling, and so is what two cores copying at once cost each other: where those are dear, the
ceiling is well under the limit, and "guard / ceiling" tells how much of what is reachable guard
reaches.
Each round measures the limit and every contender
back to back (paired, in the reverse order every other round), so a neighbour's burst of CPU use
hits them alike; a contender's figure is the median over rounds of its ratio to that round's
limit, with the spread (min-max) beside it.
Sizes: --large-files / --large-mb / --huge-mb / --small-files / --small-kb (or GUARD_BENCH_* env
vars). `--baseline DIR` (another checkout of guard, e.g. main's) adds its in-process and CLI rows
to the same paired rounds, for a before / after measured alike. guard in process runs in a
long-lived worker process per checkout (imports paid once, the timing taken inside it). Prints
figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
GUARD = [sys.executable, "-c", "from guard.cli import main; main()"]
CEILING = "ceiling: minimal reader, N procs"


def _env(name: str, default: int) -> int:
    return int(os.environ.get(f"GUARD_BENCH_{name}", str(default)))


def write_files(root: Path, count: int, size: int) -> int:
    root.mkdir(parents=True)
    block = os.urandom(min(size, MIB))
    for i in range(count):
        with open(root / f"part-{i:05d}-of-{count:05d}.bin", "wb") as f:
            left, j = size, 0
            while left > 0:
                # vary each block so no layer can deduplicate
                chunk = (i.to_bytes(4, "little") + j.to_bytes(4, "little") + block[8:])[:left]
                f.write(chunk)
                left -= len(chunk)
                j += 1
    (root / "config.json").write_text('{"architectures": ["BenchModel"]}\n')
    return sum(p.stat().st_size for p in root.iterdir())


def warm(root: Path) -> None:
    buf = bytearray(8 * MIB)
    for p in root.iterdir():
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def openssl_limit(cores: int, seconds: int) -> float:
    """Bytes per second of `openssl speed -multi CORES` on 16 KiB blocks (all cores together)."""
    out = subprocess.run(
        ["openssl", "speed", "-multi", str(cores), "-seconds", str(seconds), "-bytes", "16384", "sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^sha256\s+([0-9.]+)k", out, re.MULTILINE)
    if match is None:
        sys.exit(f"openssl speed: expected a 'sha256 <rate>k' line, found:\n{out}")
    return float(match.group(1)) * 1000  # openssl's k is 1000 bytes


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# A long-lived process that hashes the directory named on each input line with guard's
# hash_model and answers the seconds it took, timed inside it.
_WORKER = """
import sys, time
from pathlib import Path
from guard.signing.hashing import hash_model
from guard.signing.types import Serialization
for line in sys.stdin:
    t0 = time.perf_counter()
    hash_model(Path(line.rstrip("\\n")), Serialization())
    print(time.perf_counter() - t0, flush=True)
"""


class InProcess:
    """guard's hash_model from ``checkout``, in its own warm process (one per checkout)."""

    def __init__(self, checkout: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def time(self, root: Path) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{root}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            sys.exit("a hashing worker stopped (see its error above)")
        return float(answer)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _read_and_hash(paths: list[str]) -> None:
    from guard.buffers import page_aligned

    view = page_aligned(MIB)  # guard's read buffers: a private mapping, on a page
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        hasher = hashlib.sha256()
        while got := os.readv(fd, [view]):
            hasher.update(view[:got])
        os.close(fd)
        hasher.hexdigest()
    view.release()


def read_hash_ceiling(root: Path, cores: int) -> float:
    """Seconds the minimal reading hasher takes on ``root`` (see above): the walk, then one share
    of the files per process, at most one process per core, all at once."""
    t0 = time.perf_counter()
    sized: list[tuple[int, str]] = []
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    sized.append((entry.stat(follow_symlinks=False).st_size, entry.path))
    shares: list[list[str]] = [[] for _ in range(min(cores, len(sized)))]
    held = [0] * len(shares)
    for size, path in sorted(sized, reverse=True):  # largest first, each to the lightest share
        lightest = held.index(min(held))
        shares[lightest].append(path)
        held[lightest] += size + 4096
    if len(os.listdir("/proc/self/task")) != 1:  # a child could find a lock another thread held
        sys.exit("the ceiling forks its readers: this process must run a single thread")
    children = []
    for share in shares[1:]:
        pid = os.fork()
        if pid == 0:  # a process of one thread (checked above)
            code = 1
            try:
                _read_and_hash(share)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    _read_and_hash(shares[0])
    for pid in children:
        if os.waitpid(pid, 0)[1] != 0:
            sys.exit("a ceiling process failed")
    return time.perf_counter() - t0


def _sign_command(root: Path, keys: Path, sig: Path) -> list[str]:
    return [
        *GUARD,
        "sign",
        str(root),
        "--key",
        str(keys / "signing-key.pem"),
        "--signature",
        str(sig),
        "--no-cache",  # the digest cache would skip hashing after the first round
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large-files", type=int, default=_env("LARGE_FILES", 4))
    parser.add_argument("--large-mb", type=int, default=_env("LARGE_MB", 512))
    parser.add_argument("--huge-mb", type=int, default=_env("HUGE_MB", 2048))
    parser.add_argument("--small-files", type=int, default=_env("SMALL_FILES", 2000))
    parser.add_argument("--small-kb", type=int, default=_env("SMALL_KB", 64))
    parser.add_argument("--repeat", type=int, default=_env("REPEAT", 3))
    parser.add_argument("--speed-seconds", type=int, default=1, help="seconds per openssl speed run")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write the models (default: a temp dir)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of guard (e.g. main's) measured in the same rounds",
    )
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("openssl not found: its `speed` is the limit of this benchmark")

    try:
        import model_signing

        have_ms = True
    except ImportError:
        have_ms = False
        print("model-signing not installed: skipping its rows")

    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="guard-bench-", dir=args.dir))
    here = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(here)}
    checkouts = {"guard": here}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    workers = {label: InProcess(checkout) for label, checkout in checkouts.items()}
    try:
        keys = tmp / "keys"
        sig = tmp / "bench.sig"
        subprocess.run([*GUARD, "keygen", "--out", str(keys)], check=True, capture_output=True, env=env)
        shapes = {
            f"{args.large_files} x {args.large_mb} MiB": (args.large_files, args.large_mb * MIB),
            f"1 x {args.huge_mb} MiB": (1, args.huge_mb * MIB),
            f"{args.small_files} x {args.small_kb} KiB": (args.small_files, args.small_kb * 1024),
        }
        print(
            f"{cores} cores; limit: openssl speed -multi {cores} sha256 (16 KiB blocks), "
            f"measured before every round; {args.repeat} paired rounds; median ratio [min-max]"
        )
        print(f"{'shape':22} {'contender':34} {'MiB/s':>7} {'ratio to limit':>22}")
        for label, (count, size) in shapes.items():
            root = tmp / re.sub(r"\W+", "_", label)
            total = write_files(root, count, size)
            warm(root)
            contenders: dict[str, Callable[[], float]] = {}
            for who, checkout in checkouts.items():
                contenders[f"{who} in process"] = functools.partial(workers[who].time, root)
                cli_env = {**env, "PYTHONPATH": str(checkout)}
                contenders[f"{who} sign (CLI, end to end)"] = functools.partial(
                    _timed,
                    functools.partial(
                        subprocess.run,
                        _sign_command(root, keys, sig),
                        check=True,
                        capture_output=True,
                        env=cli_env,
                    ),
                )
            contenders[CEILING] = functools.partial(read_hash_ceiling, root, cores)
            if have_ms:
                contenders["model-signing (files sha256)"] = functools.partial(
                    _timed, functools.partial(model_signing.hashing.Config().hash, root)
                )
            ratios: dict[str, list[float]] = {name: [] for name in contenders}
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            limits: list[float] = []
            for round_ in range(args.repeat):
                limit = openssl_limit(cores, args.speed_seconds)
                limits.append(limit)
                names = list(contenders)
                for name in names if round_ % 2 == 0 else names[::-1]:  # no contender always first
                    rate = total / contenders[name]()
                    rates[name].append(rate)
                    ratios[name].append(rate / limit)
            print(
                f"{label:22} {'limit (openssl speed)':34} {statistics.median(limits) / MIB:7.0f} "
                f"{'':>8}[{min(limits) / MIB:.0f}-{max(limits) / MIB:.0f} MiB/s]"
            )
            for name in contenders:
                r = ratios[name]
                print(
                    f"{'':22} {name:34} {statistics.median(rates[name]) / MIB:7.0f} "
                    f"{statistics.median(r):8.2f} [{min(r):.2f}-{max(r):.2f}]"
                )
            to_ceiling = [a / b for a, b in zip(rates["guard in process"], rates[CEILING], strict=True)]
            print(
                f"{'':22} {'guard in process / ceiling, paired':34} {'':7} "
                f"{statistics.median(to_ceiling):8.2f} [{min(to_ceiling):.2f}-{max(to_ceiling):.2f}]"
            )
            if "baseline" in checkouts:
                for row in ("in process", "sign (CLI, end to end)"):
                    mine, theirs = rates[f"guard {row}"], rates[f"baseline {row}"]
                    paired = [a / b for a, b in zip(mine, theirs, strict=True)]
                    print(
                        f"{'':22} {'guard / baseline ' + row.split(' (')[0] + ', paired':34} {'':7} "
                        f"{statistics.median(paired):8.2f} [{min(paired):.2f}-{max(paired):.2f}]"
                    )
            shutil.rmtree(root, ignore_errors=True)
    finally:
        for worker in workers.values():
            worker.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
