"""`guard pin FILE|DIR`: pin references by tag to their digest in manifests (GitOps: pin at the
source, the webhook then only verifies). The same fields and rules as the mutating webhook
(guard.admission.pinning); see docs/guides/deploy.md."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from guard.commands.output import print_json
from guard.errors import UsageError, VerificationError

if TYPE_CHECKING:
    from guard.admission.pinning import DigestPinner, PinResult
    from guard.config import GuardConfig

_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_FILE_BYTES = 8 * 1024 * 1024


def _manifest_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: expected a manifest file or a directory, found nothing there")
    return files


def _documents(path: Path) -> list[dict[str, Any]]:
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise UsageError(f"{path}: expected a manifest of at most {_MAX_FILE_BYTES} bytes")
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: expected YAML manifests, found unparsable content ({err})") from err
    return [d for d in docs if isinstance(d, dict) and isinstance(d.get("kind"), str)]


_KEYS = r"(?:image|reference|uri|storageUri)"


def _rewrite(text: str, replacements: dict[str, str]) -> str:
    """Each ``old`` written as the value of an image / reference / uri / storageUri key (YAML,
    quoted or not, or JSON) becomes ``new``; the same string anywhere else is left alone."""
    for old, new in replacements.items():
        value = re.escape(old)
        yaml_field = re.compile(
            rf"^(\s*(?:-\s+)?{_KEYS}\s*:\s*([\"']?)){value}(\2(?:\s+#.*)?\s*)$", re.MULTILINE
        )
        replacement = new.replace("\\", "\\\\")
        text = yaml_field.sub(rf"\g<1>{replacement}\g<3>", text)
        json_field = re.compile(rf'("{_KEYS}"\s*:\s*"){value}(")')
        text = json_field.sub(rf"\g<1>{replacement}\g<2>", text)
    return text


async def _pin_file(pinner: DigestPinner, path: Path) -> tuple[PinResult, dict[str, str]]:
    """The pins of every manifest in ``path``, and the text replacements they make."""
    from guard.admission.pinning import PinResult  # noqa: PLC0415

    replacements: dict[str, str] = {}
    total = PinResult()
    for doc in _documents(path):
        api_version = str(doc.get("apiVersion", ""))
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        metadata = doc.get("metadata")
        namespace = str(metadata.get("namespace") or "default") if isinstance(metadata, dict) else "default"
        result = await pinner.pin(doc, group=group, kind=str(doc["kind"]), namespace=namespace)
        tested = {op["path"]: op["value"] for op in result.operations if op["op"] == "test"}
        for op in result.operations:
            if op["op"] == "replace":
                replacements[tested[op["path"]]] = op["value"]
        total.pinned.update({f"{doc['kind']} {p}": v for p, v in result.pinned.items()})
        total.notes.extend(result.notes)
    return total, replacements


def _pinning_config(config: GuardConfig, every: bool) -> GuardConfig:
    """``config`` as guard pin uses it: enforcing (pinning is the explicit request), and with
    ``--all`` a catch-all rule (the least specific: configured rules win)."""
    from guard.config import Rule  # noqa: PLC0415

    if every:
        catch_all = Rule(name="guard-pin-all", artifacts=("**",), authorities=("-",), pin="top-level")
        config = config.model_copy(update={"rules": (*config.rules, catch_all)})
    if config.policy.default_enforcement != "deny":
        policy = config.policy.model_copy(update={"default_enforcement": "deny"})
        config = config.model_copy(update={"policy": policy})
    return config


async def _pin_all(
    config: GuardConfig, files: list[Path], check: bool
) -> list[tuple[Path, PinResult, dict[str, str]]]:
    from guard.admission.pinning import DigestPinner  # noqa: PLC0415
    from guard.admission.wiring import build_engine  # noqa: PLC0415

    async def placeholder(_reference: str) -> str:
        return "sha256:" + "0" * 64  # --check: only whether something would be pinned

    engine = None if check else await build_engine(config)
    try:
        pinner = DigestPinner(config, engine.resolve if engine is not None else placeholder)
        return [(path, *(await _pin_file(pinner, path))) for path in files]
    finally:
        if engine is not None:
            await engine.aclose()


def register(app: typer.Typer) -> None:
    @app.command("pin")
    def pin_command(
        paths: Annotated[list[Path], typer.Argument(help="Manifest files or directories (YAML).")],
        config_path: Annotated[
            Path | None, typer.Option("--config", help="guard config: rules, their pin modes, registries.")
        ] = None,
        check: Annotated[
            bool, typer.Option("--check", help="Write nothing; exit 1 when a reference is unpinned.")
        ] = False,
        every: Annotated[
            bool, typer.Option("--all", help="Pin every OCI reference by tag, not only the rules' ones.")
        ] = False,
        json_output: Annotated[
            bool, typer.Option("--json", help="Print the result as JSON (with --check too).")
        ] = False,
    ) -> None:
        """Pin image and model references by tag to repo:tag@sha256:... in manifests."""
        from guard.config import load_config  # noqa: PLC0415

        config = _pinning_config(load_config(config_path), every)
        files = _manifest_files(paths)
        found = asyncio.run(_pin_all(config, files, check))
        doc = pin_document(found, check, len(files))
        count = doc["references"]
        for path, result, replacements in found:
            for note in result.notes:
                if "did not resolve" in note:
                    typer.echo(f"{path}: {note}", err=True)
            if not replacements or check:
                continue
            path.write_text(_rewrite(path.read_text(encoding="utf-8"), replacements), encoding="utf-8")
        if json_output:
            print_json(doc)
        else:
            for item in doc["pins"]:
                where = f"{item['file']}: {item['kind']} {item['location']}"
                typer.echo(f"{where} is not pinned" if check else f"{where} -> {item['pinned']}")
        if check and count:
            raise VerificationError(f"{count} reference(s) by tag in {len(files)} file(s): run guard pin")
        done = "to pin" if check else "pinned"
        typer.echo(f"guard pin: {len(files)} file(s), {count} reference(s) {done}", err=True)


def pin_document(
    found: list[tuple[Path, PinResult, dict[str, str]]], check: bool, files: int
) -> dict[str, Any]:
    """``guard pin --json``: ``{check, files, references, pins: [{file, kind, location, pinned}],
    unresolved: [{file, note}]}``; ``pinned`` (the new reference) is null with ``--check``."""
    pins: list[dict[str, Any]] = []
    unresolved: list[dict[str, str]] = []
    for path, result, replacements in found:
        unresolved += [{"file": str(path), "note": n} for n in result.notes if "did not resolve" in n]
        if not replacements:
            continue
        for where, value in result.pinned.items():
            kind, pointer = where.split(" ", 1)
            pinned = None if check else value
            pins.append({"file": str(path), "kind": kind, "location": pointer, "pinned": pinned})
    return {"check": check, "files": files, "references": len(pins), "pins": pins, "unresolved": unresolved}
