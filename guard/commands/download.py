# ruff: noqa: PLC0415, PLR0917 - imports stay lazy; typer commands take their options as parameters
"""``guard download signature|attestation|sbom REF``: an attachment's raw content (see guard.cli).

Like ``cosign download``, the content is written as it is stored; unlike it, guard says on stderr
(and in ``--json``) whether what it wrote was verified: a signature is, when trust options are
given (exactly the signature that verified is written); without them nothing is.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer

from guard.commands.option_groups import grouped
from guard.commands.output import print_json
from guard.commands.registry_options import NO_REGISTRY, RegistryOptions
from guard.commands.targets import artifact_target
from guard.commands.trust_options import NO_TRUST, TrustOptions
from guard.errors import UsageError, VerificationError

Kind = Literal["signature", "attestation", "sbom"]


class NothingAttachedError(VerificationError):
    """The artifact has no attachment of the kind asked for (exit 1, as a missing signature)."""


@grouped
def download(
    kind: Annotated[Kind, typer.Argument(metavar="KIND", help="What to fetch.", show_default=False)],
    target: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="oci://HOST/REPO[:TAG|@DIGEST], HOST/REPO[:TAG|@DIGEST] as in a Pod spec, or "
            "oci-layout:PATH[:TAG|@DIGEST].",
            show_default=False,
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write ('-': standard output).")
    ] = "-",
    trust: TrustOptions = NO_TRUST,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print what was fetched as JSON (needs -o FILE).")
    ] = False,
) -> None:
    """Fetch an artifact's signature, attestation or SBOM and write its raw content. With trust
    options (signatures only) the signature that verified is written; otherwise what is
    attached, said to be unverified. Exit 1 when nothing of KIND is attached."""
    from guard.oci.download import attached_by_digest, describe, find_attached
    from guard.oci.reference import parse_reference
    from guard.oci.store import open_store
    from guard.oci.verify import format_verification, verify_oci

    if json_output and output == "-":
        raise UsageError("--json describes what was written; give -o FILE for the content")
    if trust.given() and kind != "signature":
        raise UsageError(
            f"trust options verify signatures; to verify a model's {kind}s use guard facts REF --key ..."
        )
    ref = parse_reference(artifact_target(target))
    store = open_store(ref, registry.access())
    subject = store.resolve(ref.reference)
    if trust.given():  # verify the digest resolved here: a tag moved meanwhile is not verified instead
        verified = verify_oci(ref.with_digest(subject.digest), trust.verifier(), store)
        typer.echo(format_verification(verified), err=True)
        if verified.format == "cosign-legacy":
            raise UsageError(
                "the signature that verified is a cosign .sig tag (pre-OCI 1.1), not a referrer: "
                "fetch it with cosign download signature"
            )
        signed = verified.signed_digest or verified.digest
        found = [attached_by_digest(store, signed, verified.signature_digest).as_verified()]
    else:
        found = find_attached(store, subject.digest, kind)
    if not found:
        raise NothingAttachedError(f"no {kind} is attached to {ref.base()}@{subject.digest}")
    chosen = found[0]  # the newest (or the verified one)
    _write(output, chosen.data, [a.data for a in found])
    for item in found if output == "-" else [chosen]:
        state = "verified" if item.verified else "NOT verified (give trust options to verify)"
        if kind != "signature" and not item.verified:
            state = "NOT verified (guard facts verifies attestations)"
        typer.echo(f"{kind} {item.referrer} ({item.predicate_type or item.artifact_type}): {state}", err=True)
    if output != "-" and len(found) > 1:
        others = ", ".join(a.referrer for a in found[1:])
        typer.echo(f"wrote the newest of {len(found)}; the others: {others}", err=True)
    if json_output:
        doc = {
            "kind": kind,
            "reference": str(ref),
            "subject": subject.digest,
            "output": output,
            "written": chosen.referrer,
            "verified": chosen.verified,
            "found": [describe(a) for a in found],
        }
        print_json(doc)


def _write(output: str, data: bytes, everything: list[bytes]) -> None:
    """``-``: every attachment found, each ending in a newline (as cosign download prints them);
    a file: the chosen one, as it is stored."""
    if output == "-":
        for item in everything:
            sys.stdout.buffer.write(item if item.endswith(b"\n") else item + b"\n")
        sys.stdout.flush()
        return
    from pathlib import Path

    from guard.signing.model import write_atomic

    path = Path(output)
    if path.is_dir():
        raise UsageError(f"-o {output} is a directory; expected a file path")
    try:
        write_atomic(path, data)
    except OSError as err:
        raise UsageError(f"cannot write {output}: {err.strerror or err}") from err


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command("download")(download)
