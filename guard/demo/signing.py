"""Sections 1-5 of ``guard demo``: a model directory, a key, sign, verify, tamper and be caught."""

from __future__ import annotations

import json

from guard.demo.context import DemoContext, DemoFailed
from guard.demo.model import write_demo_model


def step_make_model(ctx: DemoContext) -> None:
    ctx.title("A model directory")
    model_dir = ctx.path(ctx.model)
    write_demo_model(model_dir)
    for path in sorted(model_dir.iterdir()):
        ctx.say(f"  {ctx.model}/{path.name:24} {path.stat().st_size:6} bytes")


def step_keygen(ctx: DemoContext) -> None:
    ctx.title("A signing key")
    ran = ctx.guard("keygen", "--out", "keys", "--name", "demo-key", "--json")
    ctx.ok(f"key pair written; fingerprint {ran.json()['fingerprint']}")
    ctx.extras["key_fingerprint"] = ran.json()["fingerprint"]


def step_sign(ctx: DemoContext) -> None:
    ctx.title("Sign (OpenSSF Model Signing v1.0)")
    ctx.guard("sign", ctx.model, "--key", ctx.private_key, "--signature", ctx.signature)


def step_verify(ctx: DemoContext) -> None:
    ctx.title("Verify")
    ctx.guard("verify", ctx.model, "--signature", ctx.signature, "--key", ctx.public_key)


def step_tamper(ctx: DemoContext) -> None:
    ctx.title("Change one file, verify again")
    target = ctx.path(ctx.model) / "config.json"
    original = target.read_bytes()
    config = json.loads(original)
    config["num_labels"] = 3
    target.write_text(json.dumps(config, indent=2) + "\n")
    ctx.say(f'  edited {ctx.model}/config.json: "num_labels": 2 -> 3')
    try:
        ran = ctx.guard(
            "verify", ctx.model, "--signature", ctx.signature, "--key", ctx.public_key, "--json", expect=1
        )
    except DemoFailed as err:
        raise DemoFailed(f"tampering went unnoticed: {err}") from err
    finally:
        target.write_bytes(original)
    result = ran.json()
    if result.get("verified") is not False or result.get("changed") != ["config.json"]:
        raise DemoFailed(f"expected exactly config.json to be reported as changed, found {result}")
    ctx.refused(f"refused (exit 1): {result['reason']}")
    ctx.say(f"  (restored {ctx.model}/config.json for the next sections)")
