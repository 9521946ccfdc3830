# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Admission under registry faults: a bounded load on loopback against `guard serve` while the
registry is stopped, restarted, slowed, made to drip and to stall.

Setup: Debian's docker-registry with a signed, an unsigned and a tampered model, reached through
``guard.testing.faultproxy.FaultProxy`` on 127.0.0.1 (the address guard's rules name); `guard
serve` (the real wiring, fail-closed rules) with short cache TTLs so faults show within seconds.
Load: --concurrency threads, each with its own keep-alive HTTPS connection, send Pods naming the
three models by tag in turn, for --phase seconds per phase and --max-requests in all.

Phases: healthy, registry stopped, restarted (same storage, the proxy moves to it), healthy again,
slow (--slow-bps), after slow, drip (1 byte per --drip-interval s), after drip, stall, after
stall. A connection that dripped or stalled stays so until it closes (a bad path, not a blip).

Figures (goals in brackets):
- wrong decisions: an unsigned or tampered model allowed, at any time [0];
- non-200 answers [0];
- answers later than the webhook's timeoutSeconds [0];
- per fault, the time from the registry's return to the first answer after which the signed
  model is allowed every time [<= one tag TTL];
- denies of the signed model during faults (correct: fail closed), for information.

Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@dataclass(frozen=True)
class Answer:
    phase: str
    model: str  # signed / unsigned / tampered
    sent: float
    seconds: float
    status: int
    allowed: bool | None
    message: str


class Load:
    """``concurrency`` threads posting reviews until ``stop()`` or ``max_requests``."""

    def __init__(
        self, url: str, ca_pem: bytes, bodies: dict[str, bytes], concurrency: int, max_requests: int
    ):
        self.url, self.ca_pem, self.bodies = url, ca_pem, bodies
        self.concurrency, self.max_requests = concurrency, max_requests
        self.phase = "healthy"
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(concurrency)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _worker(self, index: int) -> None:
        import ssl

        import httpx

        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        models = list(self.bodies)
        turn = index
        with httpx.Client(base_url=self.url, verify=context, timeout=60) as client:
            while not self._stop.is_set():
                with self._lock:
                    if len(self.answers) >= self.max_requests:
                        return
                model = models[turn % len(models)]
                turn += 1
                phase, sent = self.phase, time.monotonic()
                try:
                    response = client.post(
                        "/validate", content=self.bodies[model], headers={"content-type": "application/json"}
                    )
                    status = response.status_code
                    body = response.json().get("response", {}) if status == 200 else {}
                    allowed = body.get("allowed") if status == 200 else None
                    message = (
                        (body.get("status") or {}).get("message", "") if status == 200 else response.text
                    )
                except httpx.HTTPError as err:
                    status, allowed, message = 0, None, f"{type(err).__name__}: {err}"
                answer = Answer(phase, model, sent, time.monotonic() - sent, status, allowed, message[:300])
                with self._lock:
                    self.answers.append(answer)


def recovery(answers: list[Answer], returned_at: float, until: float) -> float | None:
    """Seconds from ``returned_at`` to the first signed-model answer after which every signed
    answer (sent before ``until``) was allowed; None if it never recovered."""
    signed = sorted(
        (a for a in answers if a.model == "signed" and returned_at <= a.sent < until), key=lambda a: a.sent
    )
    first_good = None
    for answer in signed:
        if answer.allowed:
            if first_good is None:
                first_good = answer
        else:
            first_good = None
    return None if first_good is None else first_good.sent + first_good.seconds - returned_at


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", type=float, default=8.0, help="seconds per phase (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="load threads (default 4)")
    parser.add_argument("--max-requests", type=int, default=80_000, help="requests in all, at most")
    parser.add_argument("--timeout", type=float, default=3.0, help="the webhook's timeoutSeconds (default 3)")
    parser.add_argument("--tag-ttl", type=float, default=5.0, help="cache.tag_ttl_seconds (default 5)")
    parser.add_argument("--slow-bps", type=int, default=2000, help="bytes/s in the slow phase (default 2000)")
    parser.add_argument(
        "--drip-interval", type=float, default=1.0, help="s per byte in the drip phase (default 1)"
    )
    args = parser.parse_args()

    import trustme

    from benchmarks.webhook_load import guard_serve
    from guard.testing.admission import admission_review, pod
    from guard.testing.admission_registry import publish_models
    from guard.testing.faultproxy import FaultProxy, Mode
    from guard.testing.registry import RegistryServer, registry_available

    reason = registry_available()
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="guard-faults-") as tmp_name:
        tmp = Path(tmp_name)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        cert, key = tmp / "tls.crt", tmp / "tls.key"
        cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        ca_pem = ca.cert_pem.bytes()
        registry = RegistryServer.start(tmp / "registry")
        proxy = FaultProxy(
            registry.host, slow_bytes_per_second=args.slow_bps, drip_interval=args.drip_interval
        )
        proxy.start()
        try:
            models = publish_models(registry.host, tmp / "models", prefix="faults")
            config = models.config(
                admission={
                    "timeout_seconds": args.timeout,
                    "deadline_margin_seconds": min(1.0, args.timeout / 3),
                    "cache": {
                        "tag_ttl_seconds": args.tag_ttl,
                        "ttl_seconds": 2 * args.tag_ttl,
                        "negative_ttl_seconds": 1.0,
                    },
                    "registry": {"timeout_seconds": 1.0},
                }
            )
            config["rules"][0]["artifacts"].append(f"{proxy.address}/**")
            path = tmp / "guard.yaml"
            path.write_text(json.dumps(config))
            via = {
                "signed": models.signed.replace(models.host, proxy.address),
                "unsigned": models.unsigned.replace(models.host, proxy.address),
                "tampered": models.tampered.replace(models.host, proxy.address),
            }
            bodies = {name: json.dumps(admission_review(pod(ref))).encode() for name, ref in via.items()}
            events: list[tuple[str, float]] = []
            with guard_serve(path, cert, key, 1, ca_pem) as server:
                load = Load(server.url, ca_pem, bodies, args.concurrency, args.max_requests).start()

                def phase(name: str) -> None:
                    load.phase = name
                    events.append((name, time.monotonic()))
                    time.sleep(args.phase)

                phase("healthy")
                registry.stop()
                phase("registry stopped")
                registry = RegistryServer.start(tmp / "registry")  # same storage, a new port
                proxy.retarget(registry.host)
                phase("restarted")
                phase("healthy again")
                faults: tuple[Mode, ...] = ("slow", "drip", "stall")
                for fault in faults:
                    proxy.mode = fault
                    phase(fault)
                    proxy.mode = "pass"
                    phase(f"after {fault}")
                ended = time.monotonic()
                load.stop()
        finally:
            proxy.stop()
            registry.stop()

    answers = load.answers
    wrong = [a for a in answers if a.model != "signed" and a.allowed]
    non_200 = [a for a in answers if a.status != 200]
    late = [a for a in answers if a.seconds > args.timeout]
    print(
        f"webhook under registry faults: {len(answers)} requests, {args.concurrency} connections, "
        f"{args.phase:g} s a phase, timeoutSeconds {args.timeout:g}, tag TTL {args.tag_ttl:g} s"
    )
    print(f"  wrong decisions (unsigned / tampered allowed): {len(wrong)}   (goal 0)")
    print(f"  non-200 answers: {len(non_200)}   (goal 0)")
    print(f"  answers past timeoutSeconds: {len(late)}   (goal 0)")
    slowest = max((a.seconds for a in answers), default=0.0)
    print(f"  slowest answer: {slowest:.2f} s")
    names = [name for name, _ in events]
    for i, (name, at) in enumerate(events):
        until = events[i + 1][1] if i + 1 < len(events) else ended
        in_phase = [a for a in answers if a.phase == name]
        signed_denied = sum(1 for a in in_phase if a.model == "signed" and a.allowed is False)
        late_here = sum(1 for a in in_phase if a.seconds > args.timeout)
        p50 = statistics.median(a.seconds for a in in_phase) * 1000 if in_phase else 0.0
        line = f"  {name:<17} {len(in_phase):>5} requests, p50 {p50:6.0f} ms"
        line += f", signed model denied {signed_denied:>4}, late {late_here:>3}"
        if name in ("restarted", "after slow", "after drip", "after stall"):
            again = i + 2 < len(events) and names[i + 1] == "healthy again"
            next_until = events[i + 2][1] if again else until
            took = recovery(answers, at, next_until)
            shown = "never" if took is None else f"{took:.2f} s"
            goal = "ok" if took is not None and took <= args.tag_ttl else "MISSED"
            line += f", recovered in {shown} (goal <= {args.tag_ttl:g} s: {goal})"
        print(line)
    for a in (wrong + non_200 + late)[:10]:
        print(
            f"  e.g. {a.phase}: {a.model} status {a.status} allowed {a.allowed} "
            f"after {a.seconds:.2f} s: {a.message}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
