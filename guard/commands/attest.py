"""`guard` commands for the attest capability: ``sbom``, ``attest``, ``facts`` (see guard.cli)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from guard.commands.option_groups import JsonOption, grouped
from guard.commands.output import print_json, stdout_output, write_stdout
from guard.commands.registry_options import NO_REGISTRY, RegistryOptions
from guard.commands.targets import artifact_target, is_artifact
from guard.commands.trust_options import (
    NO_SIGNING,
    NO_TRUST,
    SigningOptions,
    TrustOptions,
    path_argument,
)
from guard.errors import AttestationError, UsageError
from guard.untrusted import parse_json

if TYPE_CHECKING:
    from guard.attest.facts import ModelFacts
    from guard.attest.oci import OciTarget
    from guard.attest.subject import ModelSubject
    from guard.oci.registry import RegistryAccess

_TARGET = (
    "A model directory, oci://HOST/REPO[:TAG|@DIGEST] (or HOST/REPO:TAG as in a Pod spec) "
    "or oci-layout:PATH[:TAG|@DIGEST]."
)


def _is_oci(target: str) -> bool:
    return is_artifact(target)


def _subject(target: str, access: RegistryAccess | None) -> tuple[ModelSubject, OciTarget | None]:
    """The model a command is about: a directory (OMS subject digest) or an OCI manifest."""
    if _is_oci(target):
        from guard.attest.oci import oci_subject  # noqa: PLC0415
        from guard.oci.reference import parse_reference  # noqa: PLC0415
        from guard.oci.store import open_store  # noqa: PLC0415

        ref = parse_reference(target)
        oci = oci_subject(ref, open_store(ref, access))
        return oci.subject, oci
    from guard.attest.subject import directory_subject  # noqa: PLC0415
    from guard.signing import DigestCache  # noqa: PLC0415

    with DigestCache.default() as cache:
        return directory_subject(Path(target), cache=cache), None


def _refuse_output_inside(model_dir: Path, output: Path, what: str) -> None:
    """A file written into the model directory changes the model's digest: it would break
    ``model.sig`` and name a model that no longer exists."""
    if not model_dir.is_dir():
        return
    inside = Path(os.path.realpath(output)).is_relative_to(os.path.realpath(model_dir))
    if inside:
        raise UsageError(
            f"--output {output}: write the {what} outside the model directory {model_dir}: a file "
            "added to it changes the model's digest"
        )


def _refuse_replacing(output: Path, what: str, field: str, prefix: str) -> None:
    """``-o`` may replace an empty file or a previous output of the same kind, never another file
    (``guard sbom -o MODEL/config.json`` replaced the model's config)."""
    try:
        if not output.is_file() or output.stat().st_size == 0:
            return
        small = output.stat().st_size <= 64 << 20
        data = parse_json(output.read_bytes(), str(output), error=UsageError) if small else None
    except (OSError, UsageError):
        data = None
    if isinstance(data, dict) and str(data.get(field, "")).startswith(prefix):
        return
    raise UsageError(f"--output {output}: an existing file that is not {what}; refusing to replace it")


@grouped
def sbom(
    model_dir_text: Annotated[
        str, typer.Argument(metavar="MODEL_DIR", help="The model directory.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write the CycloneDX 1.6 JSON BOM ('-': standard output)."
        ),
    ],
    metadata: Annotated[
        Path | None,
        typer.Option(
            "--metadata",
            help="YAML/JSON model metadata (overrides what the model card and config.json say; see README).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM of a model directory (validated against the 1.6 schema)."""
    from guard.attest.modelcard import load_metadata  # noqa: PLC0415
    from guard.attest.sbom import build_sbom  # noqa: PLC0415
    from guard.signing import DigestCache  # noqa: PLC0415
    from guard.signing.model import write_atomic  # noqa: PLC0415

    model_dir = path_argument(model_dir_text, "MODEL_DIR")
    to_stdout = stdout_output(output, json_output, "document")
    if not to_stdout and (model_dir / "model.sig").is_file():  # before signing, inside is fine
        _refuse_output_inside(model_dir, output, "BOM of a signed model (it would break model.sig)")
    if not to_stdout:
        _refuse_replacing(output, "a CycloneDX BOM", "bomFormat", "CycloneDX")
    meta = load_metadata(metadata) if metadata else None
    with DigestCache.default() as cache:
        document = build_sbom(model_dir, meta, cache=cache)
    data = (json.dumps(document, indent=2) + "\n").encode()
    if to_stdout:
        write_stdout(data)
        return
    write_atomic(output, data)
    components = len(document.get("components", []))
    if json_output:
        doc = {"output": str(output), "format": "CycloneDX 1.6", "components": components}
        print_json(doc)
        return
    typer.echo(f"wrote {output} (CycloneDX 1.6 ML-BOM, {components} components)")


@grouped
def attest(  # noqa: PLR0917 (a typer command: one parameter per option)
    target: Annotated[str, typer.Argument(metavar="MODEL", help=_TARGET, show_default=False)],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the attestation bundle ('-': standard output)."),
    ],
    predicate_type: Annotated[
        str | None, typer.Option("--predicate-type", help="Predicate type URI.", show_default=False)
    ] = None,
    predicate: Annotated[
        Path | None, typer.Option("--predicate", help="Predicate JSON file.", show_default=False)
    ] = None,
    sbom_file: Annotated[
        Path | None, typer.Option("--sbom", help="Shortcut: a CycloneDX 1.6 JSON BOM.", show_default=False)
    ] = None,
    provenance: Annotated[
        Path | None,
        typer.Option("--provenance", help="Shortcut: a SLSA provenance v1 predicate.", show_default=False),
    ] = None,
    datasets: Annotated[
        Path | None,
        typer.Option(
            "--datasets", help="Shortcut: a guard dataset-provenance v1 predicate.", show_default=False
        ),
    ] = None,
    signing: SigningOptions = NO_SIGNING,
    attach: Annotated[
        bool, typer.Option("--attach", help="OCI: also attach the bundle to the artifact as a referrer.")
    ] = False,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: JsonOption = False,
) -> None:
    """Sign an attestation (in-toto Statement in a Sigstore bundle) about one model."""
    from guard.attest.sign import load_predicate, sign_attestation  # noqa: PLC0415
    from guard.attest.specs import SHORTCUT_TYPES  # noqa: PLC0415
    from guard.signing.model import write_atomic  # noqa: PLC0415

    chosen = [
        (SHORTCUT_TYPES[name], path)
        for name, path in (("sbom", sbom_file), ("provenance", provenance), ("datasets", datasets))
        if path is not None
    ]
    if predicate is not None or predicate_type is not None:
        if predicate is None or predicate_type is None:
            raise UsageError("--predicate-type and --predicate go together")
        chosen.append((predicate_type, predicate))
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one predicate: --predicate-type URI --predicate FILE, --sbom, "
            f"--provenance or --datasets (found {len(chosen)})"
        )
    path_argument(target, "MODEL")
    target = artifact_target(target)
    if signing.passphrase_stdin and registry.password_stdin:
        raise UsageError(
            "--passphrase-stdin and --password-stdin both read standard input: give the key's "
            "passphrase with --passphrase-env VAR instead"
        )
    _check_registry_options(target, registry)
    to_stdout = stdout_output(output, json_output, "document")
    if to_stdout and attach:
        raise UsageError("--attach attaches the bundle written: give -o FILE, not -o -")
    if not _is_oci(target) and not to_stdout:
        _refuse_output_inside(Path(target), output, "attestation")
    if not to_stdout:
        _refuse_replacing(output, "a Sigstore bundle", "mediaType", "application/vnd.dev.sigstore.bundle")
    ptype, path = chosen[0]
    body = load_predicate(path)
    signer = signing.signer()
    if attach and not _is_oci(target):
        raise UsageError("--attach needs an OCI target (oci://... or oci-layout:...)")
    access = registry.access() if _is_oci(target) else None
    subject, oci = _subject(target, access)
    bundle = sign_attestation(subject, ptype, body, signer)
    if to_stdout:
        write_stdout(bundle)
        return
    write_atomic(output, bundle)
    if not json_output:
        typer.echo(f"wrote {output}: {ptype} attestation for {subject.name} (sha256:{subject.sha256})")
    attached: str | None = None
    if attach and oci is not None:
        from guard.oci.referrers import attach as do_attach  # noqa: PLC0415
        from guard.oci.referrers import attachment_of  # noqa: PLC0415

        # the bytes signed, not the file read back: another writer may have replaced it since
        entry = do_attach(oci.store, oci.descriptor, attachment_of("attestation", bundle, output))
        attached = entry.digest
        if not json_output:
            typer.echo(f"attached to {oci.descriptor.digest} as {entry.digest}")
    if json_output:
        doc = {
            "output": str(output),
            "predicateType": ptype,
            "subject": {"name": subject.name, "digest": f"sha256:{subject.sha256}"},
            "attached": attached,
        }
        print_json(doc)


def _check_registry_options(target: str, registry: RegistryOptions) -> None:
    """Registry options given for a model directory are a mistake, not something to ignore."""
    if not _is_oci(target) and registry.given():
        raise UsageError(
            "--ca-file, --insecure, --username, --password-stdin and --docker-config apply to OCI "
            f"targets (oci://... or oci-layout:...), not to the directory {target}"
        )


@grouped
def facts(  # noqa: PLR0917
    target: Annotated[str, typer.Argument(metavar="MODEL", help=_TARGET, show_default=False)],
    attestation: Annotated[
        list[Path] | None,
        typer.Option("--attestation", help="An attestation bundle; repeatable.", show_default=False),
    ] = None,
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature", help="Model signature (default: MODEL_DIR/model.sig).", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model facts JSON document.")] = False,
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            metavar="KIND",
            help="Exit 1 unless this is present and verified: signature, sbom, spdx, provenance, "
            "datasets; repeatable.",
            show_default=False,
        ),
    ] = None,
    trust: TrustOptions = NO_TRUST,
    registry: RegistryOptions = NO_REGISTRY,
) -> None:
    """Verify a model's signature and attestations and print its model facts.

    For an OCI artifact, attestations attached as referrers are found and verified too."""
    from guard.attest.collect import AttestationInput, directory_facts  # noqa: PLC0415
    from guard.attest.render import render_facts  # noqa: PLC0415

    known = {"signature", "sbom", "spdx", "provenance", "datasets"}
    unknown = sorted(set(require or []) - known)
    if unknown:
        raise UsageError(
            f"--require: unknown kind {', '.join(unknown)} (expected one of {', '.join(sorted(known))})"
        )
    path_argument(target, "MODEL")
    target = artifact_target(target)
    _check_registry_options(target, registry)
    verifier = trust.verifier()
    from guard.signing.model import read_bundle_file  # noqa: PLC0415

    inputs = []
    for path in attestation or []:
        try:
            inputs.append(AttestationInput(read_bundle_file(path, "attestation"), str(path)))
        except OSError as err:
            raise UsageError(f"cannot read attestation {path}: {err.strerror or err}") from err
    if _is_oci(target):
        from guard.attest.oci import oci_facts  # noqa: PLC0415

        if signature is not None:
            raise UsageError(
                "--signature is for model directories; an OCI artifact's signature is a referrer"
            )
        access = registry.access()
        result = oci_facts(target, verifier, access=access, attestations=inputs)
    else:
        if signature is not None and not signature.is_file():  # a typo is not a missing signature
            found = "a directory" if signature.is_dir() else "nothing there"
            raise UsageError(f"--signature {signature}: expected a signature file, found {found}")
        # verification hashes the bytes: never the digest cache (its entries are keyed by what
        # the filesystem reports, which a network or FUSE one may report unchanged)
        result = directory_facts(Path(target), verifier, inputs, signature=signature)
    if as_json:
        print_json(result.to_json())
    else:
        render_facts(result)
    _check_required(result, require or [])


def _check_required(result: ModelFacts, require: list[str]) -> None:
    """``--require KIND``: exit 1 unless a verified attestation of each kind is present."""
    present = {a.name for a in result.attestations if a.status == "present"}
    lacking = []
    for kind in require:
        if kind not in present:
            why = [a.reason for a in result.attestations if a.name == kind and a.reason]
            lacking.append(f"{kind} ({'; '.join(why) or 'not present'})")
    if lacking:
        raise AttestationError(f"required attestations not verified: {', '.join(lacking)}")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("sbom")(sbom)
    app.command("attest")(attest)
    app.command("facts")(facts)
