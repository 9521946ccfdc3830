# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Start-up of the guard CLI and of `guard serve`, against baselines measured in the same run.

- CLI: a fresh process for `guard --help`, `guard verify --help` and a real
  `guard verify` of a one-file signed model (key), against a bare `python -c pass`; then the
  other common commands: `guard sign`, `push` and `check --help`, a real `guard sign` of that
  model (key, no digest cache) and `guard check -f POD --offline` (the policy library);
- webhook: time from spawning `guard serve` (a config with a key authority, a trust rule and the
  whole policy library, embedded engine) until `GET /readyz` answers 200 over TLS, against a bare
  ASGI app answering `/readyz` under the same uvicorn and TLS (`uvicorn --factory`).

Every process runs with its bytecode compiled and cached (an untimed first round writes it), as
an installed package has it. Contenders and baselines alternate within every round (--rounds,
default 7), so a neighbour's burst of CPU use hits them alike; each figure is the median over
rounds with the spread (min-max), and the ratio to its baseline; the CPU time (user + system)
of each process beside its wall time. Goals of issue 16: serve ready <= 0.5 s, `guard --help` /
`guard verify` start-up <= 0.15 s. Where the time goes: `python -X importtime -c 'import guard.cli'`.

guard runs from the source tree this file is in. ``--against TREE`` (another guard source tree,
e.g. ``git worktree add /tmp/main main``) runs every guard process a second time from TREE in the
same rounds, right after this tree's: the before / after of a change, measured alike.
Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GUARD = [sys.executable, "-c", "from guard.cli import main; main()"]
HERE = Path(__file__).resolve().parent
POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: bench, namespace: default}\nspec:\n  containers:\n"
    "    - {name: model, image: 'registry.example.com/models/bench@sha256:" + "0" * 64 + "'}\n"
)


def bytecode_env(cache: Path, tree: Path) -> dict[str, str]:
    """The environment of the measured processes: bytecode compiled once and cached (under
    ``cache``), as an installed package has it (without this, a checkout run with
    PYTHONDONTWRITEBYTECODE=1 compiles every module of guard from source at every start); guard
    imported from the source ``tree`` (first on PYTHONPATH; the processes run in ``cache``'s
    parent, so that ``python -c`` finds no other guard in its working directory)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
    env["GUARD_BENCH_CWD"] = str(cache.parent)
    return env


def run_once(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one fresh process running ``argv``, whose
    exit code must be one of ``ok``."""
    t0 = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=env["GUARD_BENCH_CWD"]
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in ok:
        raise SystemExit(f"{argv} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int, context: ssl.SSLContext) -> bool:
    """One `GET /readyz` on a new TLS connection: True on 200."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return tls.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def time_to_ready(
    argv: list[str], port: int, context: ssl.SSLContext, env: dict[str, str]
) -> tuple[float, float]:
    """(wall seconds from spawning the server until /readyz answers 200, polled every 5 ms; the
    CPU seconds the server process had used by then)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=env["GUARD_BENCH_CWD"]
    )
    try:
        while not _ready(port, context):
            if process.poll() is not None:
                raise SystemExit(f"{argv[0]} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.perf_counter() - t0 > 60:
                raise SystemExit("the server did not become ready within 60 s")
            time.sleep(0.005)
        return time.perf_counter() - t0, process_cpu(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def bare_app() -> Callable[..., object]:
    """uvicorn factory of the baseline: an ASGI app that only answers ``/readyz``."""

    async def app(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[misc]
        await send({"type": "http.response.body", "body": b"ready\n"})  # type: ignore[misc]

    return app


def _signed_model(tmp: Path) -> tuple[Path, Path]:
    """A one-file model signed with a fresh key: (model directory, public key)."""
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["BenchModel"]}\n')
    keys = tmp / "keys"
    subprocess.run([*GUARD, "keygen", "--out", str(keys), "--name", "bench"], check=True, capture_output=True)
    subprocess.run(
        [*GUARD, "sign", str(model), "--key", str(keys / "bench.pem")], check=True, capture_output=True
    )
    return model, keys / "bench.pub.pem"


def _serve_config(tmp: Path, public_key: Path) -> Path:
    config = tmp / "guard.yaml"
    config.write_text(
        "authorities:\n  ci: {kind: key, public_key: " + str(public_key) + "}\n"
        "rules:\n  - {name: models, artifacts: ['registry.example.com/models/**'], authorities: [ci]}\n"
    )
    return config


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.1f} ms [{min(values) * 1000:.0f}-{max(values) * 1000:.0f}]"


def _report(
    name: str,
    runs: list[tuple[float, float]],
    base: list[tuple[float, float]],
    goal: str,
    against: list[tuple[float, float]] | None = None,
) -> None:
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    line = f"  {name:<28} wall {_ms(walls):<22} CPU {_ms(cpus):<22}"
    if base is not runs:
        ratios = [r[0] / b[0] for r, b in zip(runs, base, strict=True)]
        line += f" wall / baseline {statistics.median(ratios):5.1f} x"
    print(line + (f"  ({goal})" if goal else ""))
    if against is not None:
        walls, cpus = [r[0] for r in against], [r[1] for r in against]
        ratios = [r[0] / a[0] for r, a in zip(runs, against, strict=True)]
        cpu_ratios = [r[1] / a[1] for r, a in zip(runs, against, strict=True)]
        print(
            f"  {'  --against TREE':<28} wall {_ms(walls):<22} CPU {_ms(cpus):<22} this / TREE: wall "
            f"{statistics.median(ratios):4.2f} x, CPU {statistics.median(cpu_ratios):4.2f} x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--against", type=Path, help="another guard source tree, measured alike (before / after)"
    )
    args = parser.parse_args()
    if args.against is not None and not (args.against / "guard" / "cli.py").is_file():
        parser.error(f"--against {args.against}: not a guard source tree (no guard/cli.py)")

    import trustme

    figures: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model, public_key = _signed_model(tmp)
        config = _serve_config(tmp, public_key)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        cert, key = tmp / "tls.crt", tmp / "tls.key"
        cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
        pod = tmp / "pod.yaml"
        pod.write_text(POD)
        cli = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "guard --help": [*GUARD, "--help"],
            "guard verify --help": [*GUARD, "verify", "--help"],
            "guard verify (1 file, key)": [*GUARD, "verify", str(model), "--key", str(public_key)],
            "guard sign --help": [*GUARD, "sign", "--help"],
            "guard push --help": [*GUARD, "push", "--help"],
            "guard check --help": [*GUARD, "check", "--help"],
            "guard sign (1 file, key)": [
                *GUARD, "sign", str(model), "--key", str(tmp / "keys" / "bench.pem"), "--no-cache",
                "--signature", str(tmp / "resigned.sig"),
            ],
            "guard check (pod, offline)": [*GUARD, "check", "-f", str(pod), "--offline"],
        }  # fmt: skip
        trees: dict[str, dict[str, str]] = {"": bytecode_env(tmp / "pycache", HERE.parent)}
        if args.against is not None:
            trees[" [against]"] = bytecode_env(tmp / "pycache-against", args.against.resolve())
        for round_ in range(args.rounds + 1):  # round 0 compiles the bytecode: not counted
            runs: dict[str, tuple[float, float]] = {}
            for name, argv in cli.items():
                for suffix, env in trees.items():
                    if suffix and not name.startswith("guard"):
                        continue
                    runs[name + suffix] = run_once(
                        argv, env, ok=(0, 1) if name == "guard check (pod, offline)" else (0,)
                    )
            for suffix, env in trees.items():
                port = _free_port()
                serve = [*GUARD, "serve", "--config", str(config), "--tls-cert", str(cert)]
                serve += ["--tls-key", str(key), "--host", "127.0.0.1", "--port", str(port)]
                runs["guard serve" + suffix] = time_to_ready(serve, port, context, env)
            env = trees[""]
            port = _free_port()
            bare = [sys.executable, "-m", "uvicorn", "startup:bare_app", "--factory", "--app-dir", str(HERE)]
            bare += ["--host", "127.0.0.1", "--port", str(port), "--ssl-certfile", str(cert)]
            bare += ["--ssl-keyfile", str(key), "--log-level", "warning", "--no-access-log"]
            runs["bare app"] = time_to_ready(bare, port, context, env)
            for name, run in runs.items():
                if round_:
                    figures.setdefault(name, []).append(run)

    print(
        f"start-up, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {args.rounds} "
        f"interleaved rounds: median [min-max] of wall time and of the process's CPU time (user + "
        f"system: what a busy machine's neighbours move less), median of each round's wall ratio"
    )
    print("  CLI, a fresh process (baseline: python -c pass)")
    base = figures["python -c pass"]
    goals = {
        "guard --help": "goal <= 150 ms",
        "guard verify --help": "goal <= 150 ms",
        "guard verify (1 file, key)": "the whole command",
        "guard sign (1 file, key)": "the whole command",
        "guard check (pod, offline)": "the whole command: policies, DENIED",
    }
    _report("python -c pass", base, base, "")
    for name in cli:
        if name.startswith("guard"):
            _report(name, figures[name], base, goals.get(name, ""), figures.get(name + " [against]"))
    print("  webhook, spawn until GET /readyz answers 200 over TLS (baseline: a bare ASGI app, same uvicorn)")
    _report("bare app", figures["bare app"], figures["bare app"], "")
    _report(
        "guard serve",
        figures["guard serve"],
        figures["bare app"],
        "goal <= 500 ms, warm-up included",
        figures.get("guard serve [against]"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
