"""NVIDIA dcgm-exporter: GPU energy per device, with the pod that holds the device.

``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` is a counter in mJ since boot: ``increase()`` over the
window handles counter resets (a driver reload or reboot) and scrape gaps (the counter keeps
counting through them). Without it, ``DCGM_FI_DEV_POWER_USAGE`` (W) is integrated over the window
at a step (a subquery). Pod labels are ``pod``/``namespace``, or ``pod_name``/``pod_namespace``
with ``--use-old-namespace``; both are read.

Shared devices: with time-slicing or MPS the device's series is repeated once per pod, so the
per-pod figures are divided among the pods present at each step (equal shares while shared), and
their sum is the device's energy. MIG instances carry the parent GPU's counter: an instance gets
its compute slices' share (``3g.40gb``: 3 of 7), the rest of the GPU is unallocated. A pod that
moved between devices has one series per device; its figures add up. Energy on a device with no
pod is unallocated (charged to no tenant).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

from guard.energy.models import Method
from guard.energy.prometheus import PrometheusClient, Sample
from guard.energy.sources.base import JOULES_PER_KWH, Row, Window, label, pod_of

ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
POWER = "DCGM_FI_DEV_POWER_USAGE"
# dcgm-exporter's own pod labels as Prometheus renames them when the scrape does not honor them
# (the target's namespace and pod, the exporter's, took the names): kept in the answer only to say
# so (``renamed_series``), never read as a pod
RENAMED_LABELS = ("exported_namespace", "exported_pod")
GROUP = ", ".join(
    (
        "namespace",
        "pod",
        "pod_namespace",
        "pod_name",
        "Hostname",
        "UUID",
        "GPU_I_ID",
        "GPU_I_PROFILE",
        *RENAMED_LABELS,
    )
)
DEVICE = "UUID, GPU_I_ID"
MJ_PER_KWH = 3.6e9
SHARED_BELOW = 0.99  # a row whose shared figure is under 99% of its own was shared with others
_MIG_SLICES = re.compile(r"^(\d+)g\.")


def _promql_regex(value: str) -> str:
    """``value`` matched literally inside a PromQL double-quoted regex (RE2): every character
    that is not a letter or digit is escaped for RE2, then backslashes and quotes for PromQL."""
    escaped = "".join(c if c.isalnum() else "\\" + c for c in value)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


def step_seconds(window: Window, resolution_seconds: float) -> int:
    """The integration step: at most 720 steps per window, at least 5 steps, and no finer than
    the resolution (about twice the scrape interval) unless the window is shorter."""
    w = window.seconds
    return max(1, math.ceil(w / 720), math.floor(min(resolution_seconds, w / 5)))


class DcgmSource:
    def __init__(
        self,
        client: PrometheusClient,
        *,
        counter: bool,
        resolution_seconds: float = 60.0,
        mig_slices_per_gpu: int = 7,
    ) -> None:
        self.client = client
        self.counter = counter
        self.resolution = resolution_seconds
        self.mig_slices = mig_slices_per_gpu
        self.schema = "dcgm-exporter " + (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ counter)"
            if counter
            else "DCGM_FI_DEV_POWER_USAGE (W gauge, integrated)"
        )
        self.label_spelling: str | None = None
        # series whose pod labels Prometheus renamed (exported_pod...): pod / namespace there name
        # the exporter's own pod, and the GPUs' energy is charged to it
        self.renamed_series = 0

    # --- queries --------------------------------------------------------------------------

    def _sub(self, window: Window) -> tuple[str, int]:
        step = step_seconds(window, self.resolution)
        # [W - 1ms : S] evaluates at W/S steps: the step at since itself is left out, so that the
        # pieces (each covering the step before it) tile the window without one extra.
        return f"[{round(window.seconds * 1000) - 1}ms:{step}s]", step

    def exact_query(self, window: Window) -> str:
        if self.counter:
            return f"max by ({GROUP}) (increase({ENERGY}[{window.range()}])) / {MJ_PER_KWH:g}"
        sub, step = self._sub(window)
        return f"sum_over_time((max by ({GROUP}) ({POWER})){sub}) * {step} / {JOULES_PER_KWH:g}"

    def shared_query(self, window: Window, devices: Sequence[str] = ()) -> str:
        """Per-step shares on the devices given (all when none): only the devices that had more
        than one pod are asked, so the cost follows the shared devices, not every GPU."""
        sub, step = self._sub(window)
        selector = ""
        if devices:
            selector = '{UUID=~"' + "|".join(_promql_regex(d) for d in sorted(devices)) + '"}'
        if self.counter:
            piece = f"increase({ENERGY}{selector}[{step}s])"
            scale = f"/ {MJ_PER_KWH:g}"
        else:
            piece = POWER + selector
            scale = f"* {step} / {JOULES_PER_KWH:g}"
        divided = f"{piece} / on({DEVICE}) group_left() count by ({DEVICE}) ({piece})"
        return f"sum by ({GROUP}) (sum_over_time(({divided}){sub})) {scale}"

    # --- rows -----------------------------------------------------------------------------

    @staticmethod
    def _key(s: Sample) -> tuple[str, str, str, str]:
        namespace, pod = pod_of(s)
        return (
            namespace,
            pod,
            label(s, "UUID"),
            label(s, "GPU_I_ID"),
        )

    def rows(self, window: Window) -> list[Row]:
        client = self.client
        exact_q = self.exact_query(window)
        exact = client.query(exact_q, window.until)
        if any("pod_name" in s.labels or "pod_namespace" in s.labels for s in exact):
            self.label_spelling = "pod_name/pod_namespace (--use-old-namespace)"
        elif exact:
            self.label_spelling = "pod/namespace"
        self.renamed_series = sum(any(k in s.labels for k in RENAMED_LABELS) for s in exact)
        by_device: dict[str, list[Sample]] = defaultdict(list)
        for s in exact:
            by_device[label(s, "UUID")].append(s)
        shared: dict[tuple[str, str, str, str], float] = {}
        shared_q: str | None = None
        shared_devices = [
            uuid
            for uuid, group in by_device.items()
            if len({self._key(s) for s in group if not label(s, "GPU_I_ID")}) > 1
        ]
        if shared_devices:
            shared_q = self.shared_query(window, shared_devices)
            shared = {self._key(s): s.value for s in client.query(shared_q, window.until)}
        out: list[Row] = []
        for uuid, group in by_device.items():
            if any(label(s, "GPU_I_ID") for s in group):
                out.extend(self._mig_rows(uuid, group, exact_q))
            else:
                out.extend(self._device_rows(group, exact_q, shared_q, shared))
        return out

    def _row(self, s: Sample, kwh: float, method: Method, source: str, note: str | None = None) -> Row:
        ns, pod, uuid, gi = self._key(s)
        device = uuid + (f" MIG {gi} {label(s, 'GPU_I_PROFILE')}" if gi else "")
        return Row(
            namespace=ns,
            pod=pod,
            kwh=max(kwh, 0.0),
            method=method,
            component="gpu",
            source=source,
            device=device,
            node=label(s, "Hostname", "hostname") or None,
            note=note,
        )

    def _device_rows(
        self,
        group: list[Sample],
        exact_q: str,
        shared_q: str | None,
        shared: dict[tuple[str, str, str, str], float],
    ) -> list[Row]:
        keys = {self._key(s) for s in group}
        out = []
        for s in group:
            k = self._key(s)
            b = shared.get(k)
            if len(keys) > 1 and shared_q is not None and b is not None and b < SHARED_BELOW * s.value:
                note = f"device shared by {len(keys)} pods in the window: equal shares while shared"
                out.append(self._row(s, b, "apportioned", shared_q, note))
            else:
                out.append(self._row(s, s.value, "measured", exact_q))
        return out

    def _mig_rows(self, uuid: str, group: list[Sample], exact_q: str) -> list[Row]:
        out = []
        device_kwh = max(s.value for s in group)
        for s in group:
            profile = label(s, "GPU_I_PROFILE")
            m = _MIG_SLICES.match(profile)
            slices = int(m.group(1)) if m else self.mig_slices
            share = min(1.0, slices / self.mig_slices)
            kwh = s.value * share
            note = f"MIG {profile or '?'}: {slices}/{self.mig_slices} of the GPU's energy"
            out.append(self._row(s, kwh, "apportioned", exact_q, note))
        rest = device_kwh - sum(r.kwh for r in out)
        if rest > 0:
            out.append(
                Row(
                    namespace="",
                    pod="",
                    kwh=rest,
                    method="apportioned",
                    component="gpu",
                    source=exact_q,
                    device=uuid,
                    node=label(group[0], "Hostname", "hostname") or None,
                    note="MIG slices held by no pod",
                )
            )
        return out
