"""``guard report --bundle DIR``: every format, the input, and a manifest, signed.

The directory holds ``report.<ext>`` per format, ``report.schema.json`` (the json format's
schema), ``scan-result.json`` (the exact bytes reported on), ``manifest.json`` and ``model.sig``.
The manifest says what each file is (format, media type, sha256, size), which scan it came from
(id, finish time, the result file's digest) and the previous bundle's manifest digest: a hash
chain from period to period. The whole directory, manifest included, is signed with guard's
signing methods (key, certificate, keyless) in the OMS format, so ``guard verify DIR`` checks
it offline and names any file added, removed or changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from guard.errors import GuardError, IntegrityError, ReportError, VerificationError
from guard.report.formats import renderer
from guard.report.model import Report, report_schema
from guard.signing.types import Manifest, Resource, Serialization, Signer, Verifier

BUNDLE_API_VERSION: Final = "guard.cnai.dev/report-bundle/v1"
MANIFEST = "manifest.json"
SIGNATURE = "model.sig"  # guard verify's default signature name
RESULT_COPY = "scan-result.json"
log = logging.getLogger(__name__)


class BundleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)
    path: str
    format: str
    media_type: str
    digest: str
    size: int

    @field_validator("path")
    @classmethod
    def _a_file_of_the_bundle(cls, path: str) -> str:
        """A bundle is flat: a file name in it, never a path that could lead out of it."""
        if not path or path in (".", "..", MANIFEST, SIGNATURE) or any(c in path for c in "/\\\0"):
            raise ValueError(f"expected the name of a file in the bundle directory, found {path!r}")
        return path


class BundleScan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)
    id: str
    finished: datetime
    result_digest: str


class PreviousBundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)
    manifest_digest: str
    scan_id: str


class BundleManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)
    api_version: Literal["guard.cnai.dev/report-bundle/v1"] = BUNDLE_API_VERSION
    created: datetime
    guard_version: str
    cluster: str
    scope: str | None
    scan: BundleScan
    previous_scan: str | None
    previous_bundle: PreviousBundle | None
    files: tuple[BundleFile, ...]

    @model_validator(mode="after")
    def _each_file_once(self) -> BundleManifest:
        repeated = _repeated(f.path for f in self.files)
        if repeated:
            raise ValueError(f"files: each path once, found {repeated}")
        return self


def _repeated(names: Iterable[str]) -> list[str]:
    """The names listed more than once, sorted."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_manifest(bundle_dir: Path) -> tuple[BundleManifest, str]:
    """A bundle's manifest and the digest of its bytes (what the next bundle chains to)."""
    path = bundle_dir / MANIFEST
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ReportError(
            f"--previous-bundle {bundle_dir}: expected a report bundle with {MANIFEST}: {err.strerror or err}"
        ) from err
    try:
        return BundleManifest.model_validate(json.loads(data)), _digest(data)
    except (ValueError, ValidationError, RecursionError) as err:
        raise ReportError(f"{path}: expected a guard report bundle manifest: {err}") from err


def _own_verifier(signer: Signer) -> Verifier | None:
    """A verifier of what ``signer`` signs (its public key); None for certificate and keyless
    signing, whose trust anchor (a root CA, an identity) the signing options do not name."""
    from guard.signing.sign_key import KeySigner  # noqa: PLC0415

    return signer.own_verifier() if isinstance(signer, KeySigner) else None


def _check_previous(previous_bundle: Path, manifest_digest: str, signer: Signer) -> None:
    """Chain only to a bundle this signer's key signed, as it is on disk, and to the manifest
    bytes that signature covers: a forged or altered previous bundle is refused."""
    from guard.signing.model import verify_model  # noqa: PLC0415

    verifier = _own_verifier(signer)
    if verifier is None:
        log.warning(
            "--previous-bundle %s: its signature is not checked with %s signing; "
            "check it with guard verify and trust options first",
            previous_bundle,
            signer.method,
        )
        return
    try:
        verified = verify_model(previous_bundle, previous_bundle / SIGNATURE, verifier)
    except GuardError as err:
        raise VerificationError(
            f"--previous-bundle {previous_bundle}: expected a bundle signed with this signing "
            f"{signer.method}, it does not verify: {err}"
        ) from err
    signed = verified.manifest.by_name().get(MANIFEST)
    if signed is None or signed.algorithm != "sha256" or "sha256:" + signed.digest.lower() != manifest_digest:
        raise VerificationError(
            f"--previous-bundle {previous_bundle}: its {MANIFEST} is not the one its signature covers"
        )


def _prepare(bundle_dir: Path) -> None:
    if bundle_dir.exists() and not bundle_dir.is_dir():
        raise ReportError(f"--bundle {bundle_dir}: exists and is not a directory")
    if bundle_dir.is_dir() and any(bundle_dir.iterdir()):
        raise ReportError(
            f"--bundle {bundle_dir}: expected a new or empty directory, found files in it "
            "(a bundle is written once and kept; give a new directory per period)"
        )
    bundle_dir.mkdir(parents=True, exist_ok=True)


def _write(path: Path, data: bytes) -> None:
    with open(path, "xb") as out:  # never replace: the directory was checked empty
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def write_bundle(  # noqa: PLR0917
    bundle_dir: Path,
    report: Report,
    result_bytes: bytes,
    result_digest: str,
    formats: tuple[str, ...],
    signer: Signer,
    *,
    created: datetime,
    previous_bundle: Path | None = None,
    previous_result_digest: str | None = None,
) -> BundleManifest:
    """Render ``formats``, write them with the input and the manifest, and sign the directory
    (on any failure, the files written are removed again)."""
    chained = None
    if previous_bundle is not None:
        prev, prev_digest = read_manifest(previous_bundle)
        if previous_result_digest is not None and previous_result_digest != prev.scan.result_digest:
            raise ReportError(
                f"--previous is not the scan --previous-bundle {previous_bundle} reported on: expected "
                f"the result with digest {prev.scan.result_digest} (its {RESULT_COPY}), found "
                f"{previous_result_digest}"
            )
        _check_previous(previous_bundle, prev_digest, signer)
        chained = PreviousBundle(manifest_digest=prev_digest, scan_id=prev.scan.id)
    rendered: list[tuple[str, str, str, bytes]] = []  # before touching the directory: fail early
    for name in formats:
        r = renderer(name)
        rendered.append((f"report.{r.extension}", name, r.media_type, r.render(report)))
    schema = (json.dumps(report_schema(), indent=2, sort_keys=True) + "\n").encode()
    rendered.append(("report.schema.json", "json-schema", "application/schema+json", schema))
    rendered.append((RESULT_COPY, "scan-result", "application/json", result_bytes))
    repeated = _repeated(path for path, _, _, _ in rendered)
    if repeated:
        raise ReportError(f"--formats: each format once; {', '.join(repeated)} would be written twice")
    _prepare(bundle_dir)
    written: list[Path] = []
    try:
        return _write_and_sign(bundle_dir, report, rendered, result_digest, signer, created, chained, written)
    except BaseException:
        for path in written:  # no unsigned, half-written bundle is left to look like one
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _write_and_sign(  # noqa: PLR0917
    bundle_dir: Path,
    report: Report,
    rendered: list[tuple[str, str, str, bytes]],
    result_digest: str,
    signer: Signer,
    created: datetime,
    chained: PreviousBundle | None,
    written: list[Path],
) -> BundleManifest:
    from guard import __version__  # noqa: PLC0415
    from guard.signing.model import sign_model  # noqa: PLC0415

    files = []
    for path, name, media, data in rendered:
        _write(bundle_dir / path, data)
        written.append(bundle_dir / path)
        files.append(
            BundleFile(path=path, format=name, media_type=media, digest=_digest(data), size=len(data))
        )
    manifest = BundleManifest(
        created=created,
        guard_version=__version__,
        cluster=report.cluster,
        scope=f"{report.scope.kind}={report.scope.name}" if report.scope else None,
        scan=BundleScan(
            id=report.appendix.scan_id, finished=report.appendix.finished, result_digest=result_digest
        ),
        previous_scan=report.deltas.previous_scan if report.deltas else None,
        previous_bundle=chained,
        files=tuple(files),
    )
    manifest_bytes = (manifest.model_dump_json(indent=2, by_alias=True) + "\n").encode()
    _write(bundle_dir / MANIFEST, manifest_bytes)
    written.append(bundle_dir / MANIFEST)
    # Sign exactly what was written here: a file another writer of the archive added or changed
    # between these writes and the hashing is refused, never signed.
    digests = [(f.path, f.digest) for f in files] + [(MANIFEST, _digest(manifest_bytes))]
    expected = Manifest(
        Serialization(),
        tuple(sorted(Resource(path, "sha256", digest.removeprefix("sha256:")) for path, digest in digests)),
    )
    try:
        sign_model(bundle_dir, signer, signature_path=bundle_dir / SIGNATURE, expected=expected)
    except IntegrityError as err:
        raise IntegrityError(
            f"--bundle {bundle_dir}: not signed: the directory no longer holds only the files guard "
            f"wrote there (another writer?): {err}",
            added=err.added,
            removed=err.removed,
            changed=err.changed,
        ) from err
    return manifest


def check_manifest(bundle_dir: Path) -> list[str]:
    """What in the directory disagrees with its manifest (after ``guard verify`` checked the
    signature over every file, this also checks the manifest's own claims)."""
    manifest, _ = read_manifest(bundle_dir)
    problems = []
    for f in manifest.files:
        path = bundle_dir / f.path
        if not path.is_file():
            problems.append(f"{f.path}: listed in the manifest, missing")
        elif _digest(path.read_bytes()) != f.digest:
            problems.append(f"{f.path}: digest differs from the manifest's {f.digest}")
    return problems
