# ruff: noqa: PLC0415, PLR0917 - typer commands take their options as parameters; imports stay lazy
"""`guard` commands for the oci capability: push, pull, attach, discover (see guard.cli).

Registry options are the ``RegistryOptions`` group (``guard.commands.registry_options``), trust
options the ``TrustOptions`` group (``guard.commands.trust_options``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from guard.commands.option_groups import JsonOption, grouped
from guard.commands.output import print_json
from guard.commands.registry_options import NO_REGISTRY, RegistryOptions
from guard.commands.targets import artifact_target
from guard.commands.trust_options import NO_TRUST, TrustOptions, path_argument
from guard.errors import UsageError

if TYPE_CHECKING:
    from guard.oci.download import Restored
    from guard.oci.types import Descriptor

log = logging.getLogger(__name__)
_META = "ModelPack metadata (default: read from config.json and the model card)"
_ATTACH = "Attach in the same command"
_TARGET_HELP = (
    "The artifact: oci://HOST/REPO[:TAG|@DIGEST], HOST/REPO[:TAG|@DIGEST] as in a Pod spec, "
    "or oci-layout:PATH[:TAG|@DIGEST]."
)


@contextmanager
def _progress(label: str) -> Iterator[tuple[Callable[[int], None] | None, Callable[[int], None] | None]]:
    """(advance, set_total) callbacks for a progress bar on a terminal; (None, None) otherwise."""
    if not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(n: int) -> None:
            bar.advance(task, n)

        def set_total(n: int) -> None:
            bar.update(task, total=n)

        yield advance, set_total


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


@grouped
def push(
    model_dir_text: Annotated[
        str, typer.Argument(metavar="MODEL_DIR", help="The model directory.", show_default=False)
    ],
    target: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="oci://HOST/REPO[:TAG], HOST/REPO[:TAG] as in a Pod spec, or oci-layout:PATH[:TAG].",
            show_default=False,
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Model name.", rich_help_panel=_META)] = None,
    version: Annotated[str | None, typer.Option(help="Model version.", rich_help_panel=_META)] = None,
    author: Annotated[
        list[str] | None, typer.Option(help="Author (repeatable).", rich_help_panel=_META)
    ] = None,
    license_: Annotated[
        list[str] | None,
        typer.Option("--license", help="SPDX license id (repeatable).", rich_help_panel=_META),
    ] = None,
    source_url: Annotated[str | None, typer.Option(help="Source URL.", rich_help_panel=_META)] = None,
    revision: Annotated[str | None, typer.Option(help="Source revision.", rich_help_panel=_META)] = None,
    architecture: Annotated[str | None, typer.Option(help="Architecture.", rich_help_panel=_META)] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="Weights format.", rich_help_panel=_META)
    ] = None,
    param_size: Annotated[
        str | None, typer.Option(help="Parameter count, e.g. 8B.", rich_help_panel=_META)
    ] = None,
    precision: Annotated[str | None, typer.Option(help="e.g. bf16.", rich_help_panel=_META)] = None,
    quantization: Annotated[str | None, typer.Option(help="e.g. gptq.", rich_help_panel=_META)] = None,
    signature: Annotated[
        Path | None, typer.Option(help="Sigstore bundle to attach.", rich_help_panel=_ATTACH)
    ] = None,
    sbom: Annotated[
        Path | None, typer.Option(help="CycloneDX / SPDX JSON to attach.", rich_help_panel=_ATTACH)
    ] = None,
    attestation: Annotated[
        list[Path] | None,
        typer.Option(help="in-toto attestation to attach (repeatable).", rich_help_panel=_ATTACH),
    ] = None,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: JsonOption = False,
) -> None:
    """Push a model directory as a CNCF ModelPack artifact; print the manifest digest."""
    from guard.oci.modelpack import ModelMetadata
    from guard.oci.push import claimed_manifest, push_model
    from guard.oci.push_checks import refuse_directory_bound, refuse_unbound, refuse_unverifiable_signature
    from guard.oci.reference import parse_reference
    from guard.oci.referrers import attach as do_attach
    from guard.oci.referrers import load_attachment
    from guard.oci.store import open_store

    model_dir = path_argument(model_dir_text, "MODEL_DIR")
    ref = parse_reference(artifact_target(target))
    if ref.digest is not None:
        raise UsageError(f"{target}: push takes a tag, not a digest (the digest is the result)")
    attachments = [load_attachment("signature", signature)] if signature else []
    attachments += [load_attachment("sbom", sbom)] if sbom else []
    attachments += [load_attachment("attestation", p) for p in attestation or []]
    exclude = []
    for path in [p for p in (signature, sbom, *(attestation or [])) if p is not None]:
        with suppress(ValueError):
            exclude.append(path.resolve().relative_to(model_dir.resolve()).as_posix())
    exclude.append("model.sig")
    signed = claimed_manifest(attachments[0].data, str(signature)) if signature else None
    # what could never verify in a registry is refused now, not at admission
    refuse_unverifiable_signature(signed, str(signature))
    if any(item.kind == "attestation" for item in attachments):
        from guard.attest.subject import directory_subject

        refuse_directory_bound(attachments, directory_subject(model_dir).sha256, target)
    access = registry.access()
    store = open_store(ref, access, create=True)
    meta = ModelMetadata(
        name=name,
        version=version,
        authors=tuple(author or ()),
        licenses=tuple(license_ or ()),
        source_url=source_url,
        revision=revision,
        architecture=architecture,
        format=format_,
        param_size=param_size,
        precision=precision,
        quantization=quantization,
    )
    with _progress(f"pushing {model_dir.name}") as (advance, set_total):
        result = push_model(
            store,
            model_dir,
            ref.tag or "latest",
            metadata=meta,
            exclude=exclude,
            signed=signed,
            progress=advance,
            on_total=set_total,
        )
    _echo_err(
        f"pushed {ref.base()}:{ref.tag or 'latest'}: {len(result.layers)} files, {result.uploaded} uploaded "
        f"({result.uploaded_bytes} bytes), {result.skipped} already present"
    )
    refuse_unbound(attachments, result.descriptor.digest, f"{ref.base()}:{ref.tag or 'latest'}")
    attached = []
    for item in attachments:
        entry = do_attach(store, result.descriptor, item)
        _echo_err(f"attached {item.kind} {entry.digest} ({entry.artifact_type})")
        attached.append({"kind": item.kind, "digest": entry.digest, "artifactType": entry.artifact_type})
    if json_output:
        doc = {
            "reference": f"{ref.base()}:{ref.tag or 'latest'}",
            "digest": result.descriptor.digest,
            "files": len(result.layers),
            "uploaded": result.uploaded,
            "uploadedBytes": result.uploaded_bytes,
            "skipped": result.skipped,
            "attached": attached,
        }
        print_json(doc)
        return
    typer.echo(result.descriptor.digest)


@grouped
def pull(
    source: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help=_TARGET_HELP,
            show_default=False,
        ),
    ],
    directory_text: Annotated[
        str, typer.Argument(metavar="DIRECTORY", help="Where to restore the model.", show_default=False)
    ],
    trust: TrustOptions = NO_TRUST,
    registry: RegistryOptions = NO_REGISTRY,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Pull into a non-empty DIRECTORY: the artifact's files replace files of the same "
            "name, other files stay.",
        ),
    ] = False,
    restore_signature: Annotated[
        bool,
        typer.Option(
            "--signature/--no-signature",
            help="Restore the model's signature as DIRECTORY/model.sig, so that `guard verify "
            "DIRECTORY` works offline: the one that verified, else the only one attached.",
        ),
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Pull a ModelPack / cnai / KitOps artifact into DIRECTORY, verifying every blob. DIRECTORY
    must be new or empty, unless --force. With trust options (as for `guard verify`), the
    signature is verified first (no weights fetched) and exactly the verified digest is pulled;
    nothing is written if it does not verify. The model's OMS signature is restored beside the
    files."""
    from guard.oci.pull import check_pull_target
    from guard.oci.pull import pull as do_pull
    from guard.oci.reference import parse_reference
    from guard.oci.store import open_store
    from guard.oci.verify import format_verification, verify_oci

    directory = path_argument(directory_text, "DIRECTORY")
    check_pull_target(directory, force=force)  # before any registry call
    ref = parse_reference(artifact_target(source))
    store = open_store(ref, registry.access())
    verified_digest: str | None = None
    verified_signature: tuple[str, str] | None = None  # (the signed digest, its signature referrer)
    if trust.given():
        verifier = trust.verifier()
        verified = verify_oci(ref, verifier, store)
        _echo_err(format_verification(verified))
        ref = ref.with_digest(verified.digest)  # pull exactly what was verified
        verified_digest = verified.digest
        if verified.format != "cosign-legacy":
            verified_signature = (verified.signed_digest or verified.digest, verified.signature_digest)
    with _progress(f"pulling {ref.base()}") as (advance, set_total):
        result = do_pull(store, ref, directory, progress=advance, on_total=set_total, force=force)
    _echo_err(f"pulled {len(result.files)} files ({result.bytes} bytes, {result.kind}) into {directory}")
    restored = None
    if restore_signature:
        restored = _restore_signature(store, result.digest, directory, verified_signature)
    if json_output:
        doc = {
            "reference": str(ref),
            "digest": result.digest,
            "directory": str(directory),
            "artifactKind": result.kind,
            "files": sorted(str(f) for f in result.files),
            "bytes": result.bytes,
            "verified": verified_digest is not None,
            "signature": str(restored.path) if restored and restored.path else None,
            "signatureVerified": bool(restored and restored.path and restored.verified),
            "signatureNote": restored.note if restored else "not restored (--no-signature)",
        }
        print_json(doc)
        return
    typer.echo(result.digest)


def _restore_signature(
    store: Any, digest: str, directory: Path, verified: tuple[str, str] | None
) -> Restored:
    """Write the model's signature beside the pulled files and say what was done."""
    from guard.oci.download import model_signature, restore_signature
    from guard.signing.types import DEFAULT_SIGNATURE_NAME

    if verified is not None:
        found = model_signature(store, verified[0], verified[1])
    else:
        found = model_signature(store, digest)
    restored = restore_signature(found, directory, DEFAULT_SIGNATURE_NAME)
    if restored.path is not None:
        _echo_err(f"restored the model signature: {restored.path} ({restored.note})")
    else:
        _echo_err(f"no signature restored: {restored.note}")
    return restored


@grouped
def attach(
    target: Annotated[str, typer.Argument(metavar="REF", help=_TARGET_HELP, show_default=False)],
    signature: Annotated[Path | None, typer.Option(help="Sigstore bundle (model.sig).")] = None,
    sbom: Annotated[Path | None, typer.Option(help="CycloneDX or SPDX JSON SBOM.")] = None,
    attestation: Annotated[
        list[Path] | None, typer.Option(help="in-toto attestation (bundle, DSSE or statement); repeatable.")
    ] = None,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: JsonOption = False,
) -> None:
    """Attach a signature, SBOM or attestation to an artifact as an OCI referrer."""
    from guard.oci.reference import parse_reference
    from guard.oci.referrers import attach as do_attach
    from guard.oci.referrers import load_attachment
    from guard.oci.store import open_store

    items = [load_attachment("signature", signature)] if signature else []
    items += [load_attachment("sbom", sbom)] if sbom else []
    items += [load_attachment("attestation", p) for p in attestation or []]
    if not items:
        raise UsageError("nothing to attach: give --signature, --sbom or --attestation")
    ref = parse_reference(artifact_target(target))
    store = open_store(ref, registry.access())
    subject = store.resolve(ref.reference)
    attached = []
    for item in items:
        entry = do_attach(store, subject, item)
        _echo_err(f"attached {item.kind} to {subject.digest} ({entry.artifact_type})")
        attached.append({"kind": item.kind, "digest": entry.digest, "artifactType": entry.artifact_type})
        if not json_output:
            typer.echo(entry.digest)
    if json_output:
        doc = {"reference": str(ref), "subject": subject.digest, "attached": attached}
        print_json(doc)


def _descriptor_row(d: Descriptor) -> dict[str, object]:
    return {
        "artifactType": d.artifact_type,
        "digest": d.digest,
        "mediaType": d.media_type,
        "size": d.size,
        "annotations": dict(d.annotations),
    }


@grouped
def discover(
    target: Annotated[str, typer.Argument(metavar="REF", help=_TARGET_HELP, show_default=False)],
    artifact_type: Annotated[str | None, typer.Option(help="Only referrers of this artifactType.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    registry: RegistryOptions = NO_REGISTRY,
) -> None:
    """List what is attached to an artifact (signatures, SBOMs, attestations)."""
    from guard.oci.reference import parse_reference
    from guard.oci.referrers import legacy_cosign, list_referrers
    from guard.oci.store import open_store

    ref = parse_reference(artifact_target(target))
    store = open_store(ref, registry.access())
    subject = store.resolve(ref.reference)
    found = list_referrers(store, subject.digest, artifact_type)
    legacy = legacy_cosign(store, subject.digest)
    if json_output:
        doc = {
            "subject": subject.digest,
            "referrers": [_descriptor_row(d) for d in found],
            "cosignLegacyTags": [{"tag": tag, **_descriptor_row(d)} for tag, d in legacy],
        }
        print_json(doc)
        return
    for tag, d in legacy:
        uses = {"sig": "verified by guard verify", "att": "read into model facts"}
        how = uses.get(tag.rsplit(".", 1)[-1], "listed only")
        typer.echo(f"cosign (pre-OCI 1.1) tag {tag}: {d.digest} ({d.artifact_type}; {how})")
    from rich.console import Console
    from rich.table import Table

    if not found:
        typer.echo(f"no referrers attached to {ref.base()}@{subject.digest}")
        return
    table = Table(title=f"{ref.base()}@{subject.digest}", title_justify="left")
    for column in ("ARTIFACT TYPE", "DIGEST", "SIZE", "CREATED", "TITLE"):
        table.add_column(column, overflow="fold")
    for d in found:
        table.add_row(
            d.artifact_type or "-",
            d.digest,
            str(d.size),
            d.annotations.get("org.opencontainers.image.created", "-"),
            d.annotations.get("org.opencontainers.image.title", "-"),
        )
    Console(soft_wrap=True, width=200).print(table)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("attach")(attach)
    app.command("discover")(discover)
