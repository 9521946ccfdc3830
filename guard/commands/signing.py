"""`guard keygen`, `guard sign` and `guard verify` (see guard.cli and README, section signing)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from guard.commands.json_failure import failure_fields
from guard.commands.option_groups import JsonOption, grouped
from guard.commands.output import print_json
from guard.commands.registry_options import NO_REGISTRY, RegistryOptions
from guard.commands.targets import artifact_target, is_artifact
from guard.commands.trust_options import (
    NO_SIGNING,
    NO_TRUST,
    PassphraseEnvOption,
    PassphraseStdinOption,
    SigningOptions,
    TrustOptions,
    path_argument,
    read_passphrase,
)
from guard.errors import GuardError, IntegrityError, UsageError

if TYPE_CHECKING:
    from guard.signing.cache import DigestCache
    from guard.signing.model import VerifiedModel
    from guard.signing.types import Manifest

log = logging.getLogger(__name__)

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}
_HASHES = ("sha256", "blake2b", "blake3")
_KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384")
_MAX_SHARD_SIZE = 2**63 - 1


def parse_size(text: str) -> int:
    """``1000000000``, ``1G`` (10^9), ``512MiB`` (2^29)... -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(
            f"--shard-size: expected a number of bytes such as 1000000000, 1G or 512MiB, found {text!r}"
        )
    unit = (match.group(2) or "").lower().removesuffix("b")
    value = int(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise UsageError(f"--shard-size: expected a positive size, found {text!r}")
    if value > _MAX_SHARD_SIZE:  # the predicate's shard_size must fit other verifiers' int64
        raise UsageError(f"--shard-size: expected at most {_MAX_SHARD_SIZE} bytes (2^63-1), found {text!r}")
    return value


def _ignore_paths(model_dir: Path, ignore: list[str], default_ignores: bool) -> tuple[str, ...]:
    from guard.signing.types import DEFAULT_IGNORE_PATHS  # noqa: PLC0415

    out = list(DEFAULT_IGNORE_PATHS) if default_ignores else []
    root = Path(os.path.realpath(model_dir))
    for given in ignore:
        item = given
        p = Path(item)
        if p.is_absolute() or item.startswith(("./", "../")):
            try:
                rel = Path(os.path.realpath(p if p.is_absolute() else Path.cwd() / p)).relative_to(root)
            except ValueError as err:
                raise UsageError(f"--ignore {item}: not inside the model directory {model_dir}") from err
            item = rel.as_posix()
        item = item.strip("/")
        if not item or item == "." or item.startswith(".."):
            raise UsageError(f"--ignore {item!r}: expected a path inside the model directory")
        if model_dir.is_dir() and not os.path.lexists(model_dir / item):
            log.warning("--ignore %s: no such path in %s (a typo?); it leaves nothing out", item, model_dir)
        if item not in out:
            out.append(item)
    return tuple(out)


def _file_count(manifest: Manifest) -> int:
    from guard.signing.manifest import file_of  # noqa: PLC0415

    return len({file_of(r.name, manifest.serialization.method) for r in manifest.resources})


def _signer_text(model: VerifiedModel) -> str:
    s = model.signer
    text = f"{s.identity} [{s.method}]"
    if s.issuer:
        text += f", issuer {s.issuer}"
    if s.key_fingerprint and s.key_fingerprint != s.identity:
        text += f", key {s.key_fingerprint}"
    return text


def keygen(  # noqa: PLR0917 (a typer command: options are parameters)
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the key pair in.", show_default=False)
    ],
    algorithm: Annotated[
        Literal["ecdsa-p256", "ecdsa-p384"], typer.Option("--algorithm", help="Key algorithm.")
    ] = "ecdsa-p256",
    name: Annotated[
        str, typer.Option("--name", help="File name stem: NAME.pem and NAME.pub.pem.")
    ] = "signing-key",
    passphrase_env: PassphraseEnvOption = None,
    passphrase_stdin: PassphraseStdinOption = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Generate an ECDSA signing key pair: NAME.pem and NAME.pub.pem. The private key is written
    mode 0600, encrypted when a passphrase is given; the public key is the one to hand to
    verifiers."""
    from guard.signing.keys import generate_keypair  # noqa: PLC0415

    if algorithm not in _KEY_ALGORITHMS:
        raise UsageError(f"--algorithm: expected one of {', '.join(_KEY_ALGORITHMS)}, found {algorithm!r}")
    if "/" in name or not name or name.startswith("."):
        raise UsageError(f"--name: expected a plain file name stem, found {name!r}")
    passphrase = read_passphrase(passphrase_env, passphrase_stdin)
    pair = generate_keypair(out, algorithm, passphrase, name=name, force=force)
    if json_output:
        doc = {
            "privateKey": str(pair.private_key),
            "publicKey": str(pair.public_key),
            "fingerprint": pair.fingerprint,
            "algorithm": algorithm,
            "encrypted": pair.encrypted,
        }
        print_json(doc)
    else:
        typer.echo(f"private key: {pair.private_key} (mode 0600{', encrypted' if pair.encrypted else ''})")
        typer.echo(f"public key:  {pair.public_key}")
        typer.echo(f"fingerprint: {pair.fingerprint}")
    if not pair.encrypted:
        log.warning("the private key is not encrypted; use --passphrase-env VAR to encrypt it")


@grouped
def sign(  # noqa: PLR0917 (a typer command: options are parameters)
    model_dir_text: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_DIR|OCI_REF",
            help="The model directory to sign, or an image or artifact: oci://HOST/REPO[:TAG|@DIGEST] "
            "(or HOST/REPO@sha256:... as in a Pod spec) or oci-layout:PATH[:TAG|@DIGEST].",
            show_default=False,
        ),
    ],
    signing: SigningOptions = NO_SIGNING,
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            help="Where to write the signature (default: MODEL_DIR/model.sig; for an OCI "
            "target: a copy of the attached bundle, none by default).",
            show_default=False,
        ),
    ] = None,
    hash_type: Annotated[
        Literal["sha256", "blake3", "blake2b"], typer.Option("--hash", help="File digest algorithm.")
    ] = "sha256",
    shard_size: Annotated[
        str | None,
        typer.Option(
            "--shard-size",
            help="Use the shards serialization with shards of this many bytes "
            "(e.g. 1000000000, 1G, 512MiB): spreads one big file over all cores.",
            show_default=False,
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Path (relative to MODEL_DIR) to leave out, with everything below it; repeatable.",
            show_default=False,
        ),
    ] = None,
    default_ignores: Annotated[
        bool,
        typer.Option(
            "--default-ignores/--no-default-ignores",
            help="Leave out .git, .gitignore, .gitattributes and .github.",
        ),
    ] = True,
    allow_symlinks: Annotated[
        bool,
        typer.Option(
            "--allow-symlinks",
            help="Sign symlinks to files inside the model as their target's "
            "bytes (links out of the model are always refused).",
        ),
    ] = False,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Use the digest cache (each byte hashed once).")
    ] = True,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: JsonOption = False,
) -> None:
    """Sign a model directory (OpenSSF Model Signing v1.0) or an OCI image (cosign v3). An
    oci://REPO@sha256:... target gets a Sigstore bundle attached as an OCI 1.1 referrer, as
    `cosign sign` writes it. Choose exactly one method: --key; --certificate with
    --certificate-chain and --key; or --keyless."""
    from guard.signing.model import sign_model  # noqa: PLC0415
    from guard.signing.types import DEFAULT_SHARD_SIZE, Serialization  # noqa: PLC0415

    model_dir = path_argument(model_dir_text, "MODEL_DIR")
    target = artifact_target(model_dir_text)
    if is_artifact(target):
        from guard.commands.sign_oci import refuse_directory_options, sign_oci_target  # noqa: PLC0415

        refuse_directory_options(shard_size=shard_size, ignore=ignore, allow_symlinks=allow_symlinks)
        if signing.passphrase_stdin and registry.password_stdin:
            raise UsageError(
                "--passphrase-stdin and --password-stdin both read standard input: give the key's "
                "passphrase with --passphrase-env VAR instead"
            )
        sign_oci_target(
            target,
            signing.signer(),
            signature=signature,
            registry=registry.access(),
            json_output=json_output,
        )
        return
    if registry_given := registry.given():
        raise UsageError(f"{', '.join(registry_given)} only apply to oci:// targets")
    if hash_type not in _HASHES:
        raise UsageError(f"--hash: expected one of {', '.join(_HASHES)}, found {hash_type!r}")
    if hash_type == "blake3" and shard_size is not None:
        raise UsageError(
            "--hash blake3 with --shard-size: blake3 already hashes a big file on all cores, and "
            "model-signing verifies blake3 signatures per file only; drop --shard-size"
        )
    # Build the signer first: a bad key fails before minutes of hashing.
    signer = signing.signer()
    serialization = Serialization(
        method="shards" if shard_size is not None else "files",
        hash_type=hash_type,
        allow_symlinks=allow_symlinks,
        ignore_paths=_ignore_paths(model_dir, ignore or [], default_ignores),
        shard_size=parse_size(shard_size) if shard_size is not None else DEFAULT_SHARD_SIZE,
    )
    if allow_symlinks:
        log.warning("--allow-symlinks: links to files inside the model are signed as their target's bytes")
    digest_cache: DigestCache | None = None
    if cache:
        from guard.signing.cache import DigestCache  # noqa: PLC0415 - sqlite3 only with the cache

        digest_cache = DigestCache.default()
    try:
        signed = sign_model(
            model_dir,
            signer,
            serialization=serialization,
            signature_path=signature,
            progress=not json_output,
            cache=digest_cache,
        )
    finally:
        if digest_cache is not None:
            digest_cache.close()
    files = _file_count(signed.manifest)
    if json_output:
        print_json(
            {
                "signature": str(signed.signature_path),
                "method": signer.method,
                "files": files,
                "resources": len(signed.manifest.resources),
                "serialization": serialization.method,
                "hash": hash_type,
            }
        )
        return
    typer.echo(f"signed {files} files in {model_dir} ({signer.method}, {serialization.method}, {hash_type})")
    typer.echo(f"signature: {signed.signature_path}")


# ``guard verify --json``: one document for a directory and an artifact, every key always present
# (null where it does not apply), on success and on failure (``verified: false``, ``error``,
# ``reason``). Documented in docs/reference/json.md.
VERIFY_KEYS = (
    "verified", "target", "kind", "reference", "digest", "store", "artifactKind", "mode",
    "format", "signature", "signatureLayer", "signedDigest", "signedVia", "dockerReference",
    "predicateType", "signer", "files", "fileCount", "serialization", "hash", "error", "reason",
    "added", "removed", "changed",
)  # fmt: skip


def verify_document(target: str | None, **fields: Any) -> dict[str, Any]:
    """The verify document with ``fields`` set and every other key null (lists empty); no
    ``kind`` either without a target (click found a usage error before reading one)."""
    doc: dict[str, Any] = dict.fromkeys(VERIFY_KEYS)
    kind = None if target is None else "oci" if is_artifact(target) else "directory"
    doc.update(target=target, kind=kind)
    doc.update(added=[], removed=[], changed=[], files=[])
    unknown = set(fields) - set(VERIFY_KEYS)
    if unknown:  # pragma: no cover - a programming error, caught by the tests
        raise AssertionError(f"verify JSON keys not in the schema: {sorted(unknown)}")
    doc.update(fields)
    return doc


def _signer_json(s: Any) -> dict[str, Any]:
    return {
        "method": s.method,
        "identity": s.identity,
        "issuer": s.issuer,
        "keyFingerprint": s.key_fingerprint,
        "details": dict(s.details) if getattr(s, "details", None) else {},
    }


def _verified_json(target: str, model: VerifiedModel, signature: Path) -> dict[str, Any]:
    files = [r.name for r in model.manifest.resources]
    return verify_document(
        target,
        verified=True,
        format="oms",
        signature=str(signature),
        signer=_signer_json(model.signer),
        predicateType=model.statement.get("predicateType"),
        serialization=model.manifest.serialization.method,
        hash=model.manifest.serialization.hash_type,
        files=files,
        fileCount=_file_count(model.manifest),
    )


def _verified_oci_json(target: str, result: Any) -> dict[str, Any]:
    raw = result.to_json()
    return verify_document(
        target,
        verified=True,
        reference=result.reference,
        digest=result.digest,
        store=result.store,
        artifactKind=result.artifact_kind,
        mode=result.mode,
        format=result.format,
        signature=result.signature_digest,
        signatureLayer=result.signature_layer,
        signedDigest=raw["signedDigest"],
        signedVia=raw["signedVia"],
        dockerReference=result.docker_reference,
        predicateType=result.predicate_type,
        signer=_signer_json(result.signer),
        files=list(result.files),
        fileCount=len(result.files),
    )


def _failure_fields(err: BaseException, params: Mapping[str, Any]) -> dict[str, Any]:
    """``guard verify --json`` on failure (``guard.commands.json_failure`` adds ``error`` and
    ``reason``): the verify document, ``verified`` false, naming the target when click read one;
    the files that differ when the bytes did."""
    target = params.get("target")
    fields: dict[str, Any] = {"verified": False}
    if isinstance(err, IntegrityError):
        fields.update(added=list(err.added), removed=list(err.removed), changed=list(err.changed))
    return verify_document(_shown_target(target) if isinstance(target, str) else None, **fields)


def _shown_target(target: str) -> str:
    """The target as the document names it; the text as given when it does not even parse."""
    try:
        return artifact_target(target)
    except GuardError:
        return target


@failure_fields(_failure_fields)
@grouped
def verify(
    target: Annotated[
        str,
        typer.Argument(
            help="Model directory, oci://HOST/REPO[:TAG|@DIGEST] (or HOST/REPO:TAG, repo@sha256:... "
            "as in a Pod spec) or oci-layout:PATH[:TAG|@DIGEST].",
            show_default=False,
            metavar="MODEL_DIR|OCI_REF",
        ),
    ],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature", help="The signature file (default: MODEL_DIR/model.sig).", show_default=False
        ),
    ] = None,
    trust: TrustOptions = NO_TRUST,
    registry: RegistryOptions = NO_REGISTRY,
    json_output: JsonOption = False,
) -> None:
    """Verify a signed model: the signature, the signer, and every file. Exit 0 verified,
    1 verification failed (says which files / identity / key), 2 usage error, 3 infrastructure."""
    document = _verify(target, signature, trust, registry, json_output)
    if document is not None:
        print_json(document)


def _verify(
    target: str, signature: Path | None, trust: TrustOptions, registry: RegistryOptions, json_output: bool
) -> dict[str, Any] | None:
    """Verify; the JSON document with --json (None when the result was printed for humans)."""
    path_argument(target, "MODEL_DIR|OCI_REF")
    target = artifact_target(target)
    verifier = trust.verifier()
    registry_options = registry.given()
    if is_artifact(target):
        if signature is not None:
            raise UsageError(
                "--signature applies to model directories; OCI signatures are found as referrers"
            )
        try:
            from guard.oci.verify import verify_oci, verify_oci_command  # noqa: PLC0415
        except ImportError as err:  # pragma: no cover - while the OCI capability is being built
            raise UsageError(f"verifying OCI artifacts is not available in this build: {err}") from err
        access = registry.access()
        if not json_output:
            verify_oci_command(target, verifier, access)
            return None
        return _verified_oci_json(target, verify_oci(target, verifier, access=access))
    if registry_options:
        raise UsageError(f"{', '.join(registry_options)} only apply to oci:// targets")
    from guard.signing.model import verify_model  # noqa: PLC0415
    from guard.signing.types import DEFAULT_SIGNATURE_NAME  # noqa: PLC0415

    model_dir = Path(target)
    sig_path = signature if signature is not None else model_dir / DEFAULT_SIGNATURE_NAME
    model = verify_model(model_dir, sig_path, verifier, progress=not json_output)
    if json_output:
        return _verified_json(target, model, sig_path)
    typer.echo(f"verified {target}: {_file_count(model.manifest)} files match the signature")
    typer.echo(f"signed by: {_signer_text(model)}")
    return None


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("keygen")(keygen)
    app.command("sign")(sign)
    app.command("verify")(verify)
