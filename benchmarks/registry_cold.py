# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Cold registry access: the first request in a repository guard has not seen, against one it knows.

A TLS registry (Debian's docker-registry, a throwaway CA given as ``ca_file``) holds --repos
repositories with one small model each. The admission verifier opens one store per repository
it meets (shared by its worker threads); this benchmark does the same in process:

- known: resolve the tag in a repository whose store is already open (connection kept alive);
- unseen: open the store of a new repository and resolve its tag (what an admission in a
  repository not seen before pays before any verification: client, TLS, scheme probe);
- first of a process: a fresh Python process's first request, timed after its imports and the
  start-up warm-up ``guard serve`` does (``guard.oci.client.warm_up``: the CA bundle parsed);
  for the registry as it is (loopback: plain HTTP is possible, so the scheme is probed first) and
  as a remote registry is (``loopback=False``: HTTPS only, no probe; on 127.0.0.1 the round trip
  the probe costs is the registry's time alone, across a network it is the network's too); and
  as remote after the pre-connect ``guard serve`` starts as it says ready for the hosts its trust
  rules name (``RegistryClient.preconnect``: the connection is open, the response path has run).

Known and unseen requests alternate, so a neighbour's CPU burst hits both alike; the headline is
unseen p50 / known p50 (goal <= 1.3) and first-of-process / unseen p50 (goal <= 2).

Then, on a registry with bearer-token auth (the token flow most registries use) and through the
admission verifier itself (``OciReferenceVerifier.resolve``): a repository the verifier has met,
resolved from a worker thread that has not (a new thread each time, timed inside it), against
the same resolve from the thread that met it. The verifier's stores are shared by its threads,
so the other thread finds the repository's token; were they per thread (as before 7 December),
each thread would run the token flow itself (a 401 and a token request more).
Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
from pathlib import Path
from guard.oci.client import warm_up
from guard.oci.registry import RegistryAccess, RegistryClient, RegistryStore
host, ca, name, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
loopback = kind == "loopback"
access = RegistryAccess(ca_file=ca)
warm_up(access)  # what guard serve's verifier does at start-up
if kind == "preconnected":  # what guard serve does once ready, for the hosts its rules name
    RegistryClient(host, access, loopback=False).preconnect()
t0 = time.perf_counter()
RegistryStore.open(host, name, access, loopback=loopback).resolve("v1")
print(time.perf_counter() - t0)
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repos", type=int, default=40, help="unseen repositories to visit")
    parser.add_argument("--processes", type=int, default=5, help="fresh processes for the first request")
    args = parser.parse_args()

    import certifi

    from guard.oci.push import push_model
    from guard.oci.registry import RegistryAccess, RegistryStore
    from guard.testing.registry import RegistryServer, registry_available

    reason = registry_available()
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="guard-bench-cold-") as tmp_text:
        tmp = Path(tmp_text)
        with RegistryServer.start(tmp / "registry", tls=True) as registry:
            assert registry.ca_file is not None
            # a realistic bundle: the system's public CAs plus the registry's (a private CA
            # appended, as a cluster's CA bundle is), loaded from disk like REQUESTS_CA_BUNDLE
            bundle = tmp / "ca-bundle.pem"
            system = Path(ssl.get_default_verify_paths().cafile or certifi.where())
            bundle.write_bytes(system.read_bytes() + b"\n" + registry.ca_file.read_bytes())
            model = tmp / "model"
            model.mkdir()
            (model / "config.json").write_text('{"architectures": ["BenchModel"]}')
            kinds = ("loopback", "remote", "preconnected")
            count = args.repos + len(kinds) * args.processes + 1
            names = [f"bench/cold-{i}" for i in range(count)]
            setup = RegistryAccess(ca_file=bundle)
            for name in names:
                push_model(RegistryStore.open(registry.host, name, setup, loopback=True), model, "v1")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
            first: dict[str, list[float]] = {kind: [] for kind in kinds}
            for i, name in enumerate(names[count - len(kinds) * args.processes :]):
                kind = kinds[i % len(kinds)]  # alternating
                command = [sys.executable, "-c", CHILD, registry.host, str(bundle), name, kind]
                run = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
                first[kind].append(float(run.stdout))
            access = RegistryAccess(ca_file=bundle)
            known_store = RegistryStore.open(registry.host, names[0], access, loopback=True)
            known_store.resolve("v1")
            known: list[float] = []
            unseen: list[float] = []
            for name in names[1 : args.repos + 1]:
                t0 = time.perf_counter()
                known_store.resolve("v1")
                known.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                RegistryStore.open(registry.host, name, access, loopback=True).resolve("v1")
                unseen.append(time.perf_counter() - t0)
    other_thread, same_thread = _other_thread_phase(args.repos)
    k, u = statistics.median(known), statistics.median(unseen)
    f, r = statistics.median(first["loopback"]), statistics.median(first["remote"])
    p = statistics.median(first["preconnected"])
    print(f"cold registry access over TLS, {args.repos} unseen repositories, {os.cpu_count()} cores")
    print(f"  known repository     p50 {k * 1000:6.2f} ms  max {max(known) * 1000:6.2f} ms")
    print(f"  unseen repository    p50 {u * 1000:6.2f} ms  max {max(unseen) * 1000:6.2f} ms")
    processes = f"{args.processes} processes"
    print(f"  first of a process   p50 {f * 1000:6.2f} ms  (loopback, scheme probed; {processes})")
    print(f"  first, as remote     p50 {r * 1000:6.2f} ms  (loopback=False: HTTPS only, no probe)")
    print(f"  first, pre-connected p50 {p * 1000:6.2f} ms  (as remote, after guard serve's pre-connect)")
    print(f"  unseen / known   {u / k:5.2f}  (goal <= 1.3)")
    print(f"  first / unseen   {f / u:5.2f}  (goal <= 2; as remote {r / u:5.2f}; pre-connected {p / u:5.2f})")
    o, t = statistics.median(other_thread), statistics.median(same_thread)
    print("token registry, through the admission verifier, a repository it has met:")
    print(f"  same thread          p50 {t * 1000:6.2f} ms")
    print(f"  another thread       p50 {o * 1000:6.2f} ms  (another / same {o / t:5.2f})")
    return 0


def _other_thread_phase(rounds: int) -> tuple[list[float], list[float]]:
    """(another thread's resolve, the same thread's resolve), seconds, ``rounds`` each,
    alternating, on a token registry through the admission verifier."""
    import base64
    import json
    import threading

    from guard.admission.verifier import OciReferenceVerifier
    from guard.config import parse_config
    from guard.oci.push import push_model
    from guard.oci.registry import RegistryAccess, RegistryStore
    from guard.testing.registry import RegistryServer

    user = ("guard", "guard-secret")
    with tempfile.TemporaryDirectory(prefix="guard-bench-token-") as tmp_text:
        tmp = Path(tmp_text)
        with RegistryServer.start(tmp / "registry", auth=user, token=True) as registry:
            model = tmp / "model"
            model.mkdir()
            (model / "config.json").write_text('{"architectures": ["BenchModel"]}')
            access = RegistryAccess(username=user[0], password=user[1])
            push_model(RegistryStore.open(registry.host, "bench/shared", access, loopback=True), model, "v1")
            docker = tmp / "docker.json"
            secret = base64.b64encode(":".join(user).encode()).decode()
            docker.write_text(json.dumps({"auths": {registry.host: {"auth": secret}}}))
            config = {"admission": {"registry": {"dockerConfig": str(docker)}}}
            verifier = OciReferenceVerifier(parse_config(config))
            reference = f"{registry.host}/bench/shared:v1"
            verifier.resolve(reference)  # met, on this thread
            other: list[float] = []
            same: list[float] = []

            def resolve() -> None:
                t0 = time.perf_counter()
                verifier.resolve(reference)
                other.append(time.perf_counter() - t0)

            for _ in range(rounds):
                thread = threading.Thread(target=resolve)
                thread.start()
                thread.join()
                t0 = time.perf_counter()
                verifier.resolve(reference)
                same.append(time.perf_counter() - t0)
    return other, same


if __name__ == "__main__":
    raise SystemExit(main())
