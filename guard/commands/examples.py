"""One example per command, shown at the end of its ``--help`` (and in the CLI reference of the
docs, generated from the same click tree). Keyed by the command path."""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, tuple[str, ...]] = {
    "keygen": ("guard keygen --out keys --name release --passphrase-env GUARD_KEY_PASSPHRASE",),
    "sign": ("guard sign ./model --key keys/release.pem",),
    "verify": (
        "guard verify ./model --key keys/release.pub.pem",
        "guard verify registry.example.com/models/llama:v1 --key keys/release.pub.pem --json",
    ),
    "push": ("guard push ./model oci://registry.example.com/models/llama:v1 --signature ./model/model.sig",),
    "pull": (
        "guard pull registry.example.com/models/llama:v1 ./llama --key keys/release.pub.pem",
        "guard verify ./llama --key keys/release.pub.pem",
    ),
    "attach": ("guard attach oci://registry.example.com/models/llama:v1 --sbom bom.json",),
    "discover": ("guard discover oci://registry.example.com/models/llama:v1 --json",),
    "sbom": ("guard sbom ./model --metadata model-meta.yaml -o bom.json",),
    "attest": ("guard attest ./model --sbom bom.json --key keys/release.pem -o bom.att.json",),
    "facts": ("guard facts oci://registry.example.com/models/llama:v1 --key keys/release.pub.pem --json",),
    "serve": ("guard serve --tls-cert tls.crt --tls-key tls.key --config guard.yaml",),
    "demo": ("guard demo --workdir /tmp/guard-demo",),
    "energy": ("guard energy --config guard.yaml --json",),
    "report": ("guard report result.json --format html -o report.html",),
    "scan": ("guard scan --config guard.yaml -o result.json",),
    "scan merge": ("guard scan merge shard-0.json shard-1.json -o result.json",),
    "policy": ("guard policy eval -i input.json --json",),
    "policy test": ("guard policy test policies/",),
    "policy eval": ("guard policy eval -i input.json --format json",),
    "check": (
        "guard check -f deploy/inference.yaml --config guard.yaml",
        "helm template charts/serving | guard check -f - --offline --json",
    ),
    "version": ("guard version --json",),
    "download": (
        "guard download signature registry.example.com/llama:v1 --key release.pub.pem",
        "guard download sbom registry.example.com/models/llama:v1 -o bom.json",
    ),
    "pin": ("guard pin deploy/ --config guard.yaml --check",),
}


def epilog(path: str) -> str | None:
    found = EXAMPLES.get(path)
    if not found:
        return None
    return "Example" + ("s" if len(found) > 1 else "") + ":\n\n" + "\n\n".join(f"  {e}" for e in found)


def summary(help_text: str) -> str:
    """The first sentence of a command's help: its one line in ``guard --help``."""
    first = " ".join(help_text.strip().split("\n\n", 1)[0].split())
    end = first.find(". ")
    return first[: end + 1] if end >= 0 else first


def add_examples(command: Any, path: str = "") -> None:
    """Set each command's epilog from ``EXAMPLES`` (one kept in its docstring is not repeated),
    and its one-line summary (the first sentence of its help)."""
    if path and not getattr(command, "epilog", None) and "Example" not in (command.help or ""):
        command.epilog = epilog(path)
    if path and command.help and not getattr(command, "short_help", None):
        command.short_help = summary(command.help)
    for name, sub in getattr(command, "commands", {}).items():
        add_examples(sub, f"{path} {name}".strip())
