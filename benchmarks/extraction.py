"""Reference extraction time (``guard.admission.references.extract_references``) per object.

Extraction runs for every admission request before any verification, on the event loop, so it
must stay linear in the object whatever its shape. Measured in the same run:

- the baseline: a Pod of 300 containers naming images only;
- the same Pod whose containers also declare model sources (env ``STORAGE_URI``, ``--model``
  paths into a PVC, ``sh -c "vllm serve $(M)"``): the cost of reading declared sources;
- hostile shapes near the 3 MiB body limit: one image in 30,000 containers (quadratic before the
  occurrences became ordered sets), 30,000 containers with model arguments, and a 3 MB shell
  script repeating ``vllm serve``.

Prints the time per object, per MB, and the ratio against the baseline (per MB). Timings on a
shared machine are noisy: compare ratios.

    .venv/bin/python benchmarks/extraction.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from guard.admission.kinds import KindTable
from guard.admission.references import extract_references

POD = KindTable().lookup("", "Pod")


def _pod(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": containers, **spec}}


def _declaring(i: int) -> dict[str, Any]:
    return {
        "name": f"c{i}",
        "image": f"registry.local/models/m{i}:v1",
        "command": ["/bin/sh", "-c", f"vllm serve $(M{i}) --port 8000 && echo done"],
        "args": ["--model", f"/data/m{i}", "--max-model-len", "4096"],
        "env": [
            {"name": f"M{i}", "value": f"org/model-{i}"},
            {"name": "STORAGE_URI", "value": f"s3://b/{i}"},
        ],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }


SHAPES: dict[str, Callable[[], dict[str, Any]]] = {
    "300 containers, images only (baseline)": lambda: _pod(
        [{"name": f"c{i}", "image": f"registry.local/models/m{i}:v1"} for i in range(300)]
    ),
    "300 containers declaring sources": lambda: _pod(
        [_declaring(i) for i in range(300)],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "w"}}],
    ),
    "one image in 30,000 containers": lambda: _pod(
        [{"name": f"c{i}", "image": "registry.local/models/m:v1"} for i in range(30_000)]
    ),
    "30,000 containers with --model": lambda: _pod(
        [{"name": f"c{i}", "image": "r.local/m:v1", "args": ["--model", f"o/m{i}"]} for i in range(30_000)]
    ),
    "a 3 MB script repeating vllm serve": lambda: _pod(
        [{"name": "c", "image": "r.local/m:v1", "command": ["sh", "-c", "vllm serve 'a b' " * 180_000]}]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    assert POD is not None
    baseline: float | None = None
    print(f"{'object':40} {'MB':>5} {'refs':>7} {'ms':>9} {'ms/MB':>9} {'ratio/MB':>9}")
    for label, make in SHAPES.items():
        obj = make()
        mb = len(json.dumps(obj)) / 1e6
        best = float("inf")
        refs = 0
        for _ in range(args.rounds):
            started = time.perf_counter()
            refs = len(extract_references(obj, POD, ()))
            best = min(best, time.perf_counter() - started)
        per_mb = best * 1000 / mb
        baseline = baseline if baseline is not None else per_mb
        print(f"{label:40} {mb:5.2f} {refs:7d} {best * 1000:9.1f} {per_mb:9.1f} {per_mb / baseline:9.2f}")


if __name__ == "__main__":
    main()
