# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""OCI transfer speed and memory of guard against plain HTTP to the same registry, same run.

Starts Debian's docker-registry (distribution 2.8) on 127.0.0.1, writes a model (default: one
1 GiB weight file plus small files; --size-mib to change) and measures, best of --repeat:

- push: ``guard.oci.push.push_model`` (digests already cached, as after ``guard sign``) as a
  ratio to a plain streamed HTTP upload of the same bytes (POST + one streamed PUT with requests);
  goal >= 0.8;
- pull: ``guard.oci.pull.pull`` (digest verified while streaming, file written) as a ratio to a
  plain streamed HTTP GET of the same blob written to a file; goal >= 0.8;
- peak memory (max RSS) of ``guard push`` and ``guard pull`` run as CLI processes; goal < 100 MiB;
- ``guard verify oci://`` for a small and the large model (goal: independent of model size).

Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20
GUARD = str(Path(sys.executable).with_name("guard"))


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
            r = s.put(f"{url}{sep}digest={digest}", data=fh,
                      headers={"Content-Type": "application/octet-stream",
                               "Content-Length": str(path.stat().st_size)})
        r.raise_for_status()


def plain_get(base_url: str, repo: str, digest: str, out: Path) -> None:
    import requests

    with requests.get(f"{base_url}/v2/{repo}/blobs/{digest}", stream=True) as r:
        r.raise_for_status()
        with out.open("wb") as fh:
            for chunk in r.iter_content(MIB):
                fh.write(chunk)


def peak_rss_mib(argv: list[str]) -> tuple[float, float]:
    """(seconds, max RSS in MiB) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=int(os.environ.get("GUARD_BENCH_OCI_MIB", "1024")))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from guard.testing.registry import registry_available

    reason = registry_available()
    if reason:
        print(f"skipped: {reason}")
        return
    work = Path(tempfile.mkdtemp(prefix="guard-bench-oci-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    try:
        run(work, args.size_mib, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size_mib: int, repeat: int) -> None:
    from guard.oci.pull import pull
    from guard.oci.push import model_layers, push_model
    from guard.oci.reference import parse_reference
    from guard.oci.store import open_store
    from guard.oci.verify import verify_oci
    from guard.signing import DigestCache, KeySigner, KeyVerifier, sign_model
    from guard.signing.keys import generate_keypair
    from guard.testing.registry import RegistryServer

    model = write_model(work, size_mib)
    weights = model / "model.safetensors"
    size = weights.stat().st_size
    print(f"model: {size / MIB:.0f} MiB weight file + 2 small files; "
          "registry: docker-registry 2.8 on loopback")
    with RegistryServer.start(work / "registry") as server:
        base_url = server.url
        digest = file_sha256(weights)
        model_layers(model)  # fills the digest cache, as `guard sign` would
        # -- push --------------------------------------------------------------------------
        t_plain_put = best_of(repeat, lambda i: plain_put(base_url, f"bench/plain-{i}", weights, digest))

        def guard_push(i: int) -> None:
            ref = parse_reference(f"oci://{server.host}/bench/guard-{i}:v1")
            push_model(open_store(ref), model, "v1")

        t_push = best_of(repeat, guard_push)
        # -- pull --------------------------------------------------------------------------
        t_plain_get = best_of(
            repeat, lambda i: plain_get(base_url, "bench/plain-0", digest, work / "plain.bin")
        )

        def guard_pull(i: int) -> None:
            out = work / f"pulled-{i}"
            pull(open_store(parse_reference(f"oci://{server.host}/bench/guard-0:v1")),
                 parse_reference(f"oci://{server.host}/bench/guard-0:v1"), out)
            shutil.rmtree(out)

        t_pull = best_of(repeat, guard_pull)
        rate = size / MIB
        print(f"push  plain PUT {rate / t_plain_put:7.0f} MiB/s   guard push {rate / t_push:7.0f} MiB/s   "
              f"ratio {t_plain_put / t_push:.2f} (goal >= 0.8)")
        print(f"pull  plain GET {rate / t_plain_get:7.0f} MiB/s   guard pull {rate / t_pull:7.0f} MiB/s   "
              f"ratio {t_plain_get / t_pull:.2f} (goal >= 0.8)")
        # -- peak memory of the CLI ---------------------------------------------------------
        _, rss_push = peak_rss_mib([GUARD, "push", str(model), f"oci://{server.host}/bench/cli:v1"])
        cli_ref = f"oci://{server.host}/bench/cli:v1"
        _, rss_pull = peak_rss_mib([GUARD, "pull", cli_ref, str(work / "cli-out")])
        print(f"peak RSS  guard push {rss_push:.0f} MiB   guard pull {rss_pull:.0f} MiB   (goal < 100 MiB)")
        # -- verify small vs large -----------------------------------------------------------
        pair = generate_keypair(work / "keys")
        small = work / "small"
        small.mkdir()
        (small / "model.safetensors").write_bytes(os.urandom(4096))
        (small / "config.json").write_text("{}")
        verifier = KeyVerifier.from_file(pair.public_key)
        timings = {}
        for label, directory in (("small", small), ("large", model)):
            with DigestCache.default() as cache:
                sign_model(directory, KeySigner.from_file(pair.private_key), cache=cache)
            target = f"oci://{server.host}/bench/verify-{label}:v1"
            signature = str(directory / "model.sig")
            subprocess.run([GUARD, "push", str(directory), target, "--signature", signature],
                           check=True, capture_output=True)
            ref = parse_reference(target)
            store = open_store(ref)
            runs = []
            for _ in range(max(5, repeat)):
                t0 = time.perf_counter()
                verify_oci(ref, verifier, store)
                runs.append(time.perf_counter() - t0)
            cli, _ = peak_rss_mib([GUARD, "verify", target, "--key", str(pair.public_key)])
            timings[label] = (statistics.median(runs), cli)
        for label, (lib, cli) in timings.items():
            print(f"verify oci:// {label:5}  library {lib * 1000:6.1f} ms (median)   "
                  f"CLI process {cli * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
