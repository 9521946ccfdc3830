"""The ``guard demo`` walk-through: a small model, signed, verified, tampered with, caught.

The demo is a list of step functions over one ``DemoContext``. Each capability adds its part by
appending ONE entry to ``STEPS``: a callable, or a ``"module:function"`` string imported only when
the demo runs (keeps ``guard --help`` fast and avoids import cycles), e.g.
``"guard.oci.demo:step_push_and_verify"``. A step prints what it does on ``ctx.console``, may
leave results for later steps in ``ctx.extras``, and raises GuardError if something does not go
as the demo expects (the demo then exits non-zero).
"""

from __future__ import annotations

import importlib
import json
import shlex
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from guard.errors import GuardError, IntegrityError, UsageError

DemoStep = Callable[["DemoContext"], None]


@dataclass
class DemoContext:
    """What the steps share. ``extras`` is free-form: a step stores what later steps need."""

    workdir: Path
    model_dir: Path
    private_key: Path
    public_key: Path
    signature: Path
    console: Console
    extras: dict[str, Any] = field(default_factory=dict)

    def title(self, text: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{text}", align="left")

    def command(self, *argv: str) -> None:
        """Show the CLI command equivalent to what the step does."""
        self.console.print(f"[dim]$[/] guard {escape(shlex.join(argv))}", highlight=False)

    def ok(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {escape(text)}", highlight=False)

    def refused(self, text: str) -> None:
        self.console.print(f"[red]✗[/] {escape(text)}", highlight=False)


class DemoFailed(GuardError):
    """A demo step did not observe what it should have (exit 1)."""

    exit_code = 1


MODEL_CARD = """\
---
license: apache-2.0
language: [en]
library_name: transformers
pipeline_tag: text-classification
base_model: guard-demo/tiny-base
datasets: [guard-demo/reviews]
tags: [demo, guard]
model-index:
- name: tiny-sentiment
  results:
  - task: {type: text-classification}
    dataset: {name: reviews, type: guard-demo/reviews}
    metrics:
    - {type: accuracy, value: 0.91}
---

# tiny-sentiment

A four-parameter sentiment classifier made up by `guard demo`. It exists to be signed.
"""


def _safetensors(values: list[float]) -> bytes:
    """A valid (tiny) safetensors file: one F32 tensor."""
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "classifier.weight": {"dtype": "F32", "shape": [1, len(values)], "data_offsets": [0, len(data)]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def write_demo_model(model_dir: Path) -> None:
    """A small Hugging Face-like model directory."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["TinySentimentForSequenceClassification"],
                "model_type": "tiny-sentiment",
                "hidden_size": 4,
                "num_labels": 2,
                "id2label": {"0": "negative", "1": "positive"},
                "torch_dtype": "float32",
                "transformers_version": "4.46.0",
            },
            indent=2,
        )
        + "\n"
    )
    (model_dir / "model.safetensors").write_bytes(_safetensors([0.25, -1.5, 0.75, 2.0]))
    (model_dir / "tokenizer.json").write_text(
        json.dumps(
            {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "good": 1, "bad": 2}}}
        )
        + "\n"
    )
    (model_dir / "README.md").write_text(MODEL_CARD)


# --- the signing steps --------------------------------------------------------------------------


def step_make_model(ctx: DemoContext) -> None:
    ctx.title("1. A model directory")
    write_demo_model(ctx.model_dir)
    for path in sorted(ctx.model_dir.iterdir()):
        ctx.console.print(f"  {path.name:24} {path.stat().st_size:6} bytes", highlight=False)


def step_keygen(ctx: DemoContext) -> None:
    from guard.signing.keys import generate_keypair  # noqa: PLC0415

    ctx.title("2. A signing key")
    ctx.command("keygen", "--out", str(ctx.private_key.parent))
    pair = generate_keypair(ctx.private_key.parent, name=ctx.private_key.name.removesuffix(".pem"))
    ctx.ok(f"private key {pair.private_key.name} (mode 0600), public key {pair.public_key.name}")
    ctx.console.print(f"  fingerprint {pair.fingerprint}", highlight=False)
    ctx.extras["key_fingerprint"] = pair.fingerprint


def step_sign(ctx: DemoContext) -> None:
    from guard.signing.model import sign_model  # noqa: PLC0415
    from guard.signing.sign_key import KeySigner  # noqa: PLC0415

    ctx.title("3. Sign (OpenSSF Model Signing v1.0)")
    ctx.command("sign", str(ctx.model_dir), "--key", str(ctx.private_key), "--signature", str(ctx.signature))
    signed = sign_model(ctx.model_dir, KeySigner.from_file(ctx.private_key), signature_path=ctx.signature)
    ctx.ok(f"signed {len(signed.manifest.resources)} files -> {ctx.signature.name}")
    for r in signed.manifest.resources:
        ctx.console.print(f"  {r.algorithm}:{r.digest[:16]}…  {r.name}", highlight=False)
    ctx.extras["manifest"] = signed.manifest


def step_verify(ctx: DemoContext) -> None:
    from guard.signing.model import verify_model  # noqa: PLC0415
    from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

    ctx.title("4. Verify")
    ctx.command("verify", str(ctx.model_dir), "--signature", str(ctx.signature), "--key", str(ctx.public_key))
    verified = verify_model(ctx.model_dir, ctx.signature, KeyVerifier.from_file(ctx.public_key))
    ctx.ok(f"verified: every file matches; signed by {verified.signer.identity} [{verified.signer.method}]")


def step_tamper(ctx: DemoContext) -> None:
    from guard.signing.model import verify_model  # noqa: PLC0415
    from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

    ctx.title("5. Change one file, verify again")
    target = ctx.model_dir / "config.json"
    original = target.read_bytes()
    config = json.loads(original)
    config["num_labels"] = 3
    target.write_text(json.dumps(config, indent=2) + "\n")
    ctx.console.print('  edited config.json: "num_labels": 2 -> 3', highlight=False)
    ctx.command("verify", str(ctx.model_dir), "--signature", str(ctx.signature), "--key", str(ctx.public_key))
    try:
        verify_model(ctx.model_dir, ctx.signature, KeyVerifier.from_file(ctx.public_key))
    except IntegrityError as err:
        if err.changed != ("config.json",):
            raise DemoFailed(f"expected exactly config.json to be reported as changed, found {err}") from err
        ctx.refused(f"verification failed (exit 1): {err}")
    else:
        raise DemoFailed("the edited model verified: tampering went unnoticed")
    finally:
        target.write_bytes(original)
    ctx.console.print("  (restored config.json for the next steps)", highlight=False)


# Capabilities append their steps here (one entry each; strings are "module:function").
STEPS: list[DemoStep | str] = [
    step_make_model,
    step_keygen,
    step_sign,
    step_verify,
    step_tamper,
    "guard.oci.demo:step_push_and_verify",
    "guard.attest.demo:step_attestations",
    "guard.policy.demo:step_policies",
    "guard.admission.demo:step_webhook",
]


def resolve_step(step: DemoStep | str) -> DemoStep:
    if callable(step):
        return step
    module, _, name = step.partition(":")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise TypeError(f"demo step {step} is not callable")
    return fn  # type: ignore[no-any-return]


def run_demo(
    console: Console | None = None,
    workdir: Path | None = None,
    *,
    keep: bool = False,
    steps: list[DemoStep | str] | None = None,
) -> DemoContext:
    """Run the demo steps in a fresh directory (removed afterwards unless ``keep`` or ``workdir``)."""
    console = console or Console(highlight=False, soft_wrap=True)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="guard-demo-")) if workdir is None else workdir.resolve()
    if root.exists() and not root.is_dir():  # resolved: steps write file:// URIs of their files
        raise UsageError(f"--workdir {workdir}: expected a directory, found a file")
    root.mkdir(parents=True, exist_ok=True)
    keys = root / "keys"
    ctx = DemoContext(
        workdir=root,
        model_dir=root / "tiny-sentiment",
        private_key=keys / "demo-key.pem",
        public_key=keys / "demo-key.pub.pem",
        signature=root / "tiny-sentiment.sig",
        console=console,
    )
    console.print(f"[bold]guard demo[/] in {root}")
    try:
        for step in STEPS if steps is None else steps:
            resolve_step(step)(ctx)
        console.print()
        not_shown = ctx.extras.get("not_shown", [])
        if not_shown:  # the final line tells the truth: what could not be shown here, and why
            console.print(
                "[bold yellow]demo complete, but not everything could be shown[/]: "
                + escape("; ".join(not_shown))
            )
        else:
            console.print(
                "[bold green]demo complete[/]: every step behaved as expected: what was signed "
                "verified; what was changed, unsigned or against policy was refused."
            )
    finally:
        if own and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            console.print(f"files kept in {root}")
    return ctx
