"""Where the webhook section's models live, and publishing them there with ``guard push``.

With Debian's ``docker-registry`` on PATH (and guard.testing, which starts it, installed) the
models go to a real registry on 127.0.0.1. Otherwise they go to a local mirror: one OCI image
layout per repository under ``mirror/``, configured in guard's config as the mirror of
``registry.guard-demo.invalid`` (a name that never resolves: guard reads the mirror, never the
network; see guard.oci.mirror). Either way the webhook verifies real signatures on real content.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from guard.demo.context import DemoContext
from guard.demo.model import write_demo_model

MIRROR_HOST = "registry.guard-demo.invalid"
MIRROR_DIR = "mirror"
MODELS = "webhook-models"


@dataclass(frozen=True)
class Registry:
    """``host``: what references name; ``push_prefix``: what ``guard push`` is given."""

    host: str
    label: str
    push_prefix: str
    registries: list[dict[str, Any]] = field(default_factory=list)


def registry_unavailable() -> str | None:
    """None when docker-registry can be started here, else why not."""
    try:
        from guard.testing.registry import registry_available  # noqa: PLC0415 - optional extra
    except ImportError:
        return "guard.testing (the registry fixture, in the test extra) is not installed"
    return registry_available()


@contextlib.contextmanager
def model_registry(ctx: DemoContext) -> Iterator[Registry]:
    reason = registry_unavailable()
    if reason is None:
        from guard.testing.registry import RegistryServer  # noqa: PLC0415 - optional extra

        with RegistryServer.start(ctx.path("registry")) as server:
            yield Registry(server.host, f"docker-registry on {server.host}", f"{server.host}/")
        return
    ctx.note(
        f"{reason}: the models go to a local mirror instead, {MIRROR_DIR}/ (one OCI image layout "
        f"per repository), which the webhook's config names as the mirror of {MIRROR_HOST}"
    )
    ctx.notes.append(f"the webhook read the models from a local OCI layout mirror, as {reason}")
    yield Registry(
        MIRROR_HOST,
        f"the mirror {MIRROR_DIR}/ of {MIRROR_HOST}",
        f"oci-layout:{MIRROR_DIR}/",
        [{"host": MIRROR_HOST, "mirror": {"ociLayout": MIRROR_DIR}}],
    )


def _model(ctx: DemoContext, name: str, weights: bytes) -> str:
    path = f"{MODELS}/{name}"
    write_demo_model(ctx.path(path))
    (ctx.path(path) / "model.safetensors").write_bytes(weights)
    return path


def publish(ctx: DemoContext, registry: Registry) -> str:
    """Sign and push ``demo/signed:v1``, push ``demo/unsigned:v1`` unsigned, and push
    ``demo/tampered:v1`` whose weights changed after signing, with the signature attached; the
    signed manifest's digest."""
    target = registry.push_prefix + "demo/{}:v1"
    signed = _model(ctx, "signed", b"signed weights " * 64)
    ctx.guard("sign", signed, "--key", ctx.private_key, "--signature", f"{signed}.sig")
    pushed = ctx.guard("push", signed, target.format("signed"), "--signature", f"{signed}.sig", "--json")
    ctx.guard("push", _model(ctx, "unsigned", b"unsigned weights " * 64), target.format("unsigned"))
    # an attacker with push access: other weights under demo/tampered, with the signature of the
    # weights that were signed (guard push itself refuses a signature its files do not match)
    tampered = _model(ctx, "tampered", b"tampered weights " * 64)
    ctx.guard("sign", tampered, "--key", ctx.private_key, "--signature", f"{tampered}.sig")
    (ctx.path(tampered) / "model.safetensors").write_bytes(b"backdoored weights " * 64)
    ctx.say(
        f"  an attacker changes {tampered}/model.safetensors after signing, pushes it, attaches the signature"
    )
    ctx.guard("push", tampered, target.format("tampered"))
    ctx.guard("attach", target.format("tampered"), "--signature", f"{tampered}.sig")
    digest: str = pushed.json()["digest"]
    return digest
