# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""OCI transfer speed and memory of guard against plain HTTP to the same registry, same run.

Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1, writes a model (default: one
1 GiB weight file plus small files; --size-mib to change) and measures, in --rounds interleaved
rounds (medians of the per-round ratios, with their spread):

- push: ``guard.oci.push.push_model`` (digests already cached, as after ``guard sign``) as a
  ratio to a plain streamed HTTP upload of the same bytes (POST + one streamed PUT with requests);
  goal >= 0.8;
- pull: ``guard.oci.pull.pull`` (digest verified while streaming, files written, staging and
  moves) as a ratio to a plain streamed GET of the weight blob that **hashes what it receives**
  and writes it to a file (requests, 1 MiB ``iter_content``, SHA-256 inline): the least any
  client that checks the digest does; goal >= 0.85. The GET that does not hash is printed too.
  Each is a fresh child process timed from inside, after its imports and an ``os.sync()``;
  ``--before DIR`` (repeatable) adds the pull of another checkout of guard (e.g.
  ``git archive``'d), in the same rounds;
- peak memory (max RSS) of ``guard pull`` and ``guard push`` run as CLI processes; goal < 100 MiB;
- ``guard verify oci://`` by file count: models of 10 / 100 / 1,000 files (``--files``) with the
  same small total size, in process (median) and as a CLI process. Verification fetches the
  manifest, the signature referrer and its bundle, never a weight blob: the cost per file should
  be tiny.

Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
VERIFY_RUNS = 7
HERE = Path(__file__).resolve()
TREE = HERE.parent.parent


def best_of(repeat: int, fn: Callable[[int], object]) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return min(times)


def write_model(root: Path, size_mib: int) -> Path:
    model = root / "model"
    model.mkdir(parents=True)
    config = {"architectures": ["BenchModel"], "torch_dtype": "bfloat16"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "README.md").write_text("---\nlicense: apache-2.0\n---\n# bench\n")
    block = os.urandom(4 * MIB)
    with (model / "model.safetensors").open("wb") as fh:
        for i in range(size_mib // 4):
            fh.write(hashlib.sha256(i.to_bytes(8, "big")).digest() + block[32:])
    return model


def write_many(root: Path, files: int, total: int) -> Path:
    """A model of ``files`` files (one config.json, the rest shards) of ``total`` bytes in all."""
    model = root / f"many-{files}"
    (model / "shards").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["BenchModel"]}))
    each = max(1, total // files)
    for i in range(files - 1):
        (model / "shards" / f"shard-{i:05d}.bin").write_bytes(os.urandom(each))
    return model


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * MIB):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def plain_put(base_url: str, repo: str, path: Path, digest: str) -> None:
    import requests

    with requests.Session() as s:
        r = s.post(f"{base_url}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        r.raise_for_status()
        location = r.headers["Location"]
        url = location if "://" in location else base_url + location
        sep = "&" if "?" in url else "?"
        with path.open("rb") as fh:
            r = s.put(
                f"{url}{sep}digest={digest}",
                data=fh,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(path.stat().st_size),
                },
            )
        r.raise_for_status()


def plain_get(url: str, out: Path, *, hashed: bool) -> None:
    """The baseline: a streamed GET written to a file; ``hashed`` also hashes what it receives
    (and checks it, as any client that verifies must)."""
    import requests

    h = hashlib.sha256()
    with requests.get(url, stream=True) as r:
        r.raise_for_status()
        with out.open("wb") as fh:
            for chunk in r.iter_content(MIB):
                if hashed:
                    h.update(chunk)
                fh.write(chunk)
    if hashed and "sha256:" + h.hexdigest() != url.rsplit("/", 1)[1]:
        raise SystemExit(f"baseline GET of {url}: digest mismatch")


# -- child processes: one measurement each, timed from inside after the imports ---------------


def child(argv: list[str]) -> None:
    kind, what, out = argv
    out_path = Path(out)
    if kind == "verify":  # out: the public key; prints the median of VERIFY_RUNS verifications
        from guard.oci.reference import parse_reference
        from guard.oci.store import open_store
        from guard.oci.verify import verify_oci
        from guard.signing import KeyVerifier

        ref = parse_reference(what)
        store = open_store(ref)
        verifier = KeyVerifier.from_file(out_path)
        verify_oci(ref, verifier, store)  # the connection is open, the TLS context built
        runs = []
        for _ in range(VERIFY_RUNS):
            t0 = time.perf_counter()
            verify_oci(ref, verifier, store)
            runs.append(time.perf_counter() - t0)
        print(json.dumps({"seconds": statistics.median(runs)}))
        return
    if kind == "pull":
        from guard.oci.pull import pull
        from guard.oci.reference import parse_reference
        from guard.oci.store import open_store

        ref = parse_reference(what)
        store = open_store(ref)
        t0, c0 = time.perf_counter(), time.process_time()
        pull(store, ref, out_path)
    else:
        import requests  # noqa: F401 - imported before the clock starts, as guard's are

        t0, c0 = time.perf_counter(), time.process_time()
        plain_get(what, out_path, hashed=kind == "get-hash")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "rss": rss}))


def run_child(kind: str, what: str, out: Path, tree: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    os.sync()  # the previous contender's dirty pages are not this one's writeback
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", kind, what, str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed: {proc.stderr[-2000:]}")
    if kind == "verify":
        pass
    elif out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def peak_rss_mib(argv: list[str], tree: Path = TREE) -> tuple[float, float]:
    """(seconds, max RSS in MiB) of a child process."""
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024


def guard_cli(*args: str) -> list[str]:
    """The ``guard`` console script, importing guard from the PYTHONPATH the caller sets."""
    return [str(Path(sys.executable).with_name("guard")), *args]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=int(os.environ.get("GUARD_BENCH_OCI_MIB", "1024")))
    parser.add_argument("--rounds", "--repeat", type=int, default=5, dest="rounds")
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="another checkout of guard (the directory holding its guard/ package) "
        "whose pull is measured in the same rounds; repeatable",
    )
    parser.add_argument("--files", default="10,100,1000", help="file counts for verify oci://")
    parser.add_argument("--verify-total-kib", type=int, default=1024, help="total size of each verify model")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: push, pull, verify")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where the pull contenders write (e.g. /dev/shm: no disk writeback in "
        "the timings); default: the work directory",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from guard.testing.registry import registry_available

    reason = registry_available()
    if reason:
        print(f"skipped: {reason}")
        return
    work = Path(tempfile.mkdtemp(prefix="guard-bench-oci-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    try:
        run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    from guard.oci.push import model_layers, push_model
    from guard.oci.reference import parse_reference
    from guard.oci.store import open_store
    from guard.testing.registry import RegistryServer

    skip = set(filter(None, args.skip.split(",")))
    model = write_model(work, args.size_mib)
    weights = model / "model.safetensors"
    size = weights.stat().st_size
    print(
        f"model: {size / MIB:.0f} MiB weight file + 2 small files; "
        f"registry: docker-registry 2.8 on loopback; {args.rounds} rounds"
    )
    with RegistryServer.start(work / "registry") as server:
        base_url = server.url
        digest = file_sha256(weights)
        model_layers(model)  # fills the digest cache, as `guard sign` would
        ref_text = f"oci://{server.host}/bench/guard-0:v1"
        push_model(open_store(parse_reference(ref_text)), model, "v1")
        # -- push --------------------------------------------------------------------------
        if "push" not in skip:
            t_plain_put = best_of(
                args.rounds, lambda i: plain_put(base_url, f"bench/plain-{i}", weights, digest)
            )

            def guard_push(i: int) -> None:
                ref = parse_reference(f"oci://{server.host}/bench/push-{i}:v1")
                push_model(open_store(ref), model, "v1")

            t_push = best_of(args.rounds, guard_push)
            rate = size / MIB
            print(
                f"push  plain PUT {rate / t_plain_put:7.0f} MiB/s   "
                f"guard push {rate / t_push:7.0f} MiB/s   ratio {t_plain_put / t_push:.2f} "
                f"(best of {args.rounds}; goal >= 0.8)"
            )
        # -- pull --------------------------------------------------------------------------
        if "pull" not in skip:
            pull_rounds(work, args, server, ref_text, f"{base_url}/v2/bench/guard-0/blobs/{digest}", size)
        # -- verify oci:// by file count -----------------------------------------------------
        if "verify" not in skip:
            verify_by_count(work, args, server)


def pull_rounds(
    work: Path, args: argparse.Namespace, server: object, ref_text: str, url: str, size: int
) -> None:
    contenders: dict[str, tuple[str, str, Path]] = {
        "GET": ("get", url, TREE),
        "GET+hash": ("get-hash", url, TREE),
        "guard pull": ("pull", ref_text, TREE),
    }
    others = [(f"guard pull ({tree.name})", tree.resolve()) for tree in args.before]
    for name, tree in others:
        contenders[name] = ("pull", ref_text, tree)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    out_dir = args.out_dir or work
    for r in range(args.rounds):
        order = list(contenders.items())
        if r % 2:
            order.reverse()  # neither goes first every time
        for name, (kind, what, tree) in order:
            samples[name].append(run_child(kind, what, out_dir / "guard-bench-pulled", tree))
    rate = size / MIB
    base = samples["GET+hash"]
    print(
        f"pull  ({size / MIB:.0f} MiB blob written to {out_dir}; child processes, timed after "
        "imports; median [min-max])"
    )
    for name, runs in samples.items():
        speeds = [rate / s["seconds"] for s in runs]
        ratio = [b["seconds"] / s["seconds"] for b, s in zip(base, runs, strict=True)]
        cpu = statistics.median(s["cpu"] for s in runs)
        rss = max(s["rss"] for s in runs)
        print(
            f"  {name:28} {statistics.median(speeds):6.0f} MiB/s   / GET+hash {spread(ratio)}   "
            f"CPU {cpu:5.2f} s   max RSS {rss:4.0f} MiB"
        )
    print("  goal: guard pull >= 0.85 of GET+hash")
    trees = [("now", TREE)] + [(tree.name, tree.resolve()) for tree in args.before]
    for label, tree in trees:
        out = work / "cli-out"
        elapsed, rss = peak_rss_mib(guard_cli("pull", ref_text, str(out)), tree)
        shutil.rmtree(out)
        print(f"  `guard pull` CLI ({label}): {elapsed:5.2f} s, peak RSS {rss:.0f} MiB (goal < 100 MiB)")


def verify_by_count(work: Path, args: argparse.Namespace, server: object) -> None:
    from guard.signing import DigestCache, KeySigner, sign_model
    from guard.signing.keys import generate_keypair

    host = server.host  # type: ignore[attr-defined]
    pair = generate_keypair(work / "keys")
    total = args.verify_total_kib * 1024
    counts = [int(c) for c in args.files.split(",") if c]
    trees = [("now", TREE)] + [(tree.name, tree.resolve()) for tree in args.before]
    print(
        f"verify oci://  (models of {args.verify_total_kib} KiB in all; in process: median of "
        f"{VERIFY_RUNS} in a child, best of {args.rounds} children; one CLI process each)"
    )
    first: dict[str, float] = {}
    for count in counts:
        directory = write_many(work, count, total)
        with DigestCache.default() as cache:
            sign_model(directory, KeySigner.from_file(pair.private_key), cache=cache)
        target = f"oci://{host}/bench/verify-{count}:v1"
        subprocess.run(
            guard_cli("push", str(directory), target, "--signature", str(directory / "model.sig")),
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(TREE)),
        )
        lib: dict[str, list[float]] = {label: [] for label, _ in trees}
        cli: dict[str, list[float]] = {label: [] for label, _ in trees}
        for r in range(args.rounds):
            for label, tree in trees if r % 2 == 0 else list(reversed(trees)):
                lib[label].append(run_child("verify", target, pair.public_key, tree)["seconds"])
                if r < 2:
                    cli[label].append(
                        peak_rss_mib(guard_cli("verify", target, "--key", str(pair.public_key)), tree)[0]
                    )
        for label, _ in trees:
            lib_ms = min(lib[label]) * 1000
            first.setdefault(label, lib_ms)
            extra = ""
            if count != counts[0]:
                per_file = (lib_ms - first[label]) / (count - counts[0]) * 1000
                extra = f"   +{per_file:.0f} us per file over {counts[0]}"
            print(
                f"  {count:5} files  {label:16} library {lib_ms:7.1f} ms   "
                f"CLI process {min(cli[label]) * 1000:6.0f} ms{extra}"
            )


if __name__ == "__main__":
    main()
