"""`guard report` end to end: every format to a file, errors, and signed bundles that
`guard verify` checks offline (a tampered file refused; bundles hash-chained)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from guard.cli import run
from guard.errors import InfrastructureError, ReportError
from guard.report.bundle import MANIFEST, BundleManifest, check_manifest
from guard.report.formats import FORMATS
from guard.report.model import Report
from guard.signing.keys import KeyPair, generate_keypair
from guard.testing.links import plant_link


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(autouse=True)
def _private_digest_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "pdf"])
def test_each_format_to_a_file(fmt: str, result_file: Path, previous_file: Path, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    assert (
        run(["report", str(result_file), "--format", fmt, "-o", str(out), "--previous", str(previous_file)])
        == 0
    )
    assert out.stat().st_size > 0


def test_json_to_stdout_with_scope(result_file: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(["report", str(result_file), "-f", "json", "-o", "-", "--scope", "tenant=team-b"]) == 0
    report = Report.model_validate_json(capsysbinary.readouterr().out)
    assert report.scope is not None and report.scope.name == "team-b"
    assert {f.tenant for f in report.findings} == {"team-b"}


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["report", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"].endswith("/report/v1.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "expected the JSON document"),
        (
            '{"apiVersion": "v1", "kind": "List"}',
            "expected apiVersion 'guard.cnai.dev/scan-result/v1', found 'v1'",
        ),
        ("[1, 2]", "found 'list'"),
        (
            '{"apiVersion": "guard.cnai.dev/scan-result/v1"}',
            "is not a valid scan result: scan: Field required",
        ),
        ("[" * 100_000, "expected the JSON document"),
        ('{"apiVersion": NaN}', "NaN is not a JSON number"),
    ],
)
def test_bad_result_files(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert run(["report", str(path), "-f", "json", "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "docx", "-o", "x"], "--format: expected one of html, pdf"),
        (["-f", "json"], "give --format F and -o FILE, or --bundle DIR"),
        (["--scope", "team=a", "-f", "json", "-o", "x"], "expected tenant=NAME or namespace=NAME"),
        (["--bundle", "b", "-f", "json"], "--bundle writes every format"),
        (["-f", "json", "-o", "x", "--formats", "csv"], "apply to --bundle only"),
        (["--bundle", "b", "--formats", "csv,docx", "--key", "k"], "found 'docx'"),
        (["--bundle", "b", "--formats", "csv"], "choose a signing method"),
    ],
)
def test_usage_errors(
    args: list[str],
    message: str,
    result_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["report", str(result_file), *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def _bundle(result_file: Path, out: Path, keypair: KeyPair, *extra: str) -> int:
    formats = "html,md,csv,json,sarif,junit,oscal"
    return run(
        [
            "report",
            str(result_file),
            "--bundle",
            str(out),
            "--formats",
            formats,
            "--key",
            str(keypair.private_key),
            *extra,
        ]
    )


def test_bundle_is_verified_offline_and_a_tampered_file_refused(
    result_file: Path,
    previous_file: Path,
    keypair: KeyPair,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "2026-11"
    assert _bundle(result_file, bundle, keypair, "--previous", str(previous_file)) == 0
    manifest = BundleManifest.model_validate_json((bundle / MANIFEST).read_text())
    names = sorted(f.path for f in manifest.files)
    assert names == sorted(
        [
            "report.html",
            "report.md",
            "report.csv",
            "report.json",
            "report.sarif",
            "report.xml",
            "report.oscal.json",
            "report.schema.json",
            "scan-result.json",
        ]
    )
    for f in manifest.files:
        assert f.digest == "sha256:" + hashlib.sha256((bundle / f.path).read_bytes()).hexdigest()
    assert manifest.scan.id == "scan-2" and manifest.previous_scan == "scan-1"
    assert manifest.scan.result_digest == "sha256:" + hashlib.sha256(result_file.read_bytes()).hexdigest()
    assert check_manifest(bundle) == []
    capsys.readouterr()
    assert run(["verify", str(bundle), "--key", str(keypair.public_key)]) == 0

    # one changed byte in a report: the signature check names the file
    csv_file = bundle / "report.csv"
    csv_file.write_bytes(csv_file.read_bytes().replace(b"critical", b"low     ", 1))
    capsys.readouterr()
    assert run(["verify", str(bundle), "--key", str(keypair.public_key)]) == 1
    assert "report.csv" in capsys.readouterr().err
    assert check_manifest(bundle) == [
        f"report.csv: digest differs from the manifest's "
        f"{next(f.digest for f in manifest.files if f.path == 'report.csv')}"
    ]


def test_bundle_refuses_a_forged_manifest_and_an_added_file(
    result_file: Path, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    assert _bundle(result_file, bundle, keypair) == 0
    manifest = bundle / MANIFEST
    manifest.write_text(manifest.read_text().replace("scan-2", "scan-9"))
    assert run(["verify", str(bundle), "--key", str(keypair.public_key)]) == 1
    assert "manifest.json" in capsys.readouterr().err
    other = tmp_path / "c"
    assert _bundle(result_file, other, keypair) == 0
    (other / "extra.txt").write_text("slipped in")
    assert run(["verify", str(other), "--key", str(keypair.public_key)]) == 1
    assert "extra.txt" in capsys.readouterr().err
    wrong = generate_keypair(tmp_path / "wrong")
    assert _bundle(result_file, tmp_path / "d", keypair) == 0
    assert run(["verify", str(tmp_path / "d"), "--key", str(wrong.public_key)]) == 1


def test_bundles_are_hash_chained(result_file: Path, keypair: KeyPair, tmp_path: Path) -> None:
    first, second = tmp_path / "2026-10", tmp_path / "2026-11"
    assert _bundle(result_file, first, keypair) == 0
    assert _bundle(result_file, second, keypair, "--previous-bundle", str(first)) == 0
    chained = BundleManifest.model_validate_json((second / MANIFEST).read_text())
    assert chained.previous_bundle is not None
    assert chained.previous_bundle.manifest_digest == (
        "sha256:" + hashlib.sha256((first / MANIFEST).read_bytes()).hexdigest()
    )
    assert BundleManifest.model_validate_json((first / MANIFEST).read_text()).previous_bundle is None


def test_bundle_directory_must_be_new(
    result_file: Path, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    assert _bundle(result_file, bundle, keypair) == 0
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert _bundle(result_file, bundle, keypair) == 2
    assert "expected a new or empty directory" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
    assert _bundle(result_file, tmp_path / "x", keypair, "--previous-bundle", str(tmp_path / "nope")) == 2
    assert "expected a report bundle" in capsys.readouterr().err


def test_bundle_signed_with_a_certificate(
    result_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.testing.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    bundle = tmp_path / "b"
    args = [
        "report",
        str(result_file),
        "--bundle",
        str(bundle),
        "--formats",
        "json,csv",
        *pki.signing_options(),
    ]
    assert run(args) == 0
    capsys.readouterr()
    assert run(["verify", str(bundle), "--certificate-roots", str(pki.root)]) == 0
    assert "CN=model signer" in capsys.readouterr().out
    other = make_pki(tmp_path / "other", prefix="other ")
    assert run(["verify", str(bundle), "--certificate-roots", str(other.root)]) == 1


def test_json_describes_the_file_written(
    result_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.sarif"
    assert run(["report", str(result_file), "--format", "sarif", "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == str(out) and doc["format"] == "sarif" and doc["bytes"] == out.stat().st_size
    assert run(["report", str(result_file), "--format", "json", "-o", "-", "--json"]) == 2


def test_a_result_with_a_lone_surrogate_is_refused_not_a_crash(
    result_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON may escape half of a UTF-16 pair (``"\\ud800"``); Python decodes it to a string no
    UTF-8 writer can encode, and every format but junit raised UnicodeEncodeError (a traceback,
    exit 1: read as a failed check). The result file is refused as what it is (exit 2)."""
    doc = json.loads(result_file.read_text())
    doc["workloads"][0]["namespace"] = "team-\ud800"
    result_file.write_text(json.dumps(doc))
    for fmt in ("html", "md", "csv", "sarif", "oscal", "json"):
        assert run(["report", str(result_file), "-f", fmt, "-o", str(tmp_path / f"out.{fmt}")]) == 2
        err = capsys.readouterr().err
        assert "lone UTF-16 surrogate" in err and "Traceback" not in err


def test_output_replaces_a_planted_symlink_never_writes_through_it(result_file: Path, tmp_path: Path) -> None:
    # a shared reports directory: someone planted report.html -> a file of the user's
    planted = plant_link(tmp_path, "report.html")
    assert run(["report", str(result_file), "-f", "md", "-o", str(planted.path)]) == 0
    planted.assert_replaced()
    assert planted.path.stat().st_size > 0


def test_bundle_signature_covers_what_guard_wrote_not_what_was_slipped_in(
    result_file: Path,
    keypair: KeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another writer of the archive adds a file and changes a report between guard's writes and
    its signature: the signature must not vouch for either."""
    import guard.report.bundle as bundle_module

    real_write = bundle_module._write
    bundle = tmp_path / "b"

    def racing_write(path: Path, data: bytes) -> None:
        real_write(path, data)
        if path.name == MANIFEST:  # the last file guard writes before it signs
            (bundle / "extra.txt").write_text("slipped in")
            csv_file = bundle / "report.csv"
            csv_file.write_bytes(csv_file.read_bytes().replace(b"critical", b"low     ", 1))

    monkeypatch.setattr(bundle_module, "_write", racing_write)
    code = _bundle(result_file, bundle, keypair)
    err = capsys.readouterr().err
    assert code == 1 and "not signed" in err and "extra.txt" in err and "report.csv" in err
    assert not (bundle / "model.sig").exists()
    assert run(["verify", str(bundle), "--key", str(keypair.public_key)]) != 0


@pytest.mark.parametrize("forgery", ["manifest edited", "signed by another key", "signature removed"])
def test_previous_bundle_must_be_one_this_signer_signed(
    forgery: str, result_file: Path, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who can write to the archive replaces last period's bundle: the next bundle must
    not sign a chain link to it."""
    first, second = tmp_path / "2026-10", tmp_path / "2026-11"
    if forgery == "signed by another key":
        assert _bundle(result_file, first, generate_keypair(tmp_path / "attacker")) == 0
    else:
        assert _bundle(result_file, first, keypair) == 0
    if forgery == "manifest edited":
        manifest = first / MANIFEST
        manifest.write_text(manifest.read_text().replace("scan-2", "scan-9"))
    elif forgery == "signature removed":
        (first / "model.sig").unlink()
    capsys.readouterr()
    assert _bundle(result_file, second, keypair, "--previous-bundle", str(first)) == 1
    assert "--previous-bundle" in capsys.readouterr().err
    assert not (second / "model.sig").exists()


def test_certificate_signed_bundles_chain(result_file: Path, tmp_path: Path) -> None:
    from guard.testing.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    first, second = tmp_path / "2026-10", tmp_path / "2026-11"
    base = ["report", str(result_file), "--formats", "json", *pki.signing_options()]
    assert run([*base, "--bundle", str(first)]) == 0
    assert run([*base, "--bundle", str(second), "--previous-bundle", str(first)]) == 0
    chained = BundleManifest.model_validate_json((second / MANIFEST).read_text())
    assert chained.previous_bundle is not None
    assert chained.previous_bundle.manifest_digest == (
        "sha256:" + hashlib.sha256((first / MANIFEST).read_bytes()).hexdigest()
    )


def test_a_bundle_that_fails_leaves_no_unsigned_files(
    result_file: Path,
    keypair: KeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    twice = tmp_path / "twice"
    args = ["report", str(result_file), "--bundle", str(twice), "--key", str(keypair.private_key)]
    assert run([*args, "--formats", "json,json"]) == 2
    assert "report.json would be written twice" in capsys.readouterr().err
    assert not twice.exists() or not any(twice.iterdir())

    import guard.signing.model as model_module

    def offline(*_: object, **__: object) -> None:
        raise InfrastructureError("the Sigstore instance refused or failed the signing")

    monkeypatch.setattr(model_module, "sign_model", offline)
    failed = tmp_path / "failed"
    assert _bundle(result_file, failed, keypair) == 3
    assert list(failed.iterdir()) == []  # no manifest.json without its model.sig


@pytest.mark.parametrize("listed", ["../outside.txt", "/tmp/outside.txt", "sub/../../outside.txt", "dup"])
def test_a_manifest_listing_a_path_outside_the_bundle_or_twice_is_refused(
    listed: str, result_file: Path, keypair: KeyPair, tmp_path: Path
) -> None:
    bundle = tmp_path / "archive" / "b"
    assert _bundle(result_file, bundle, keypair) == 0
    outside = tmp_path / "archive" / "outside.txt"
    outside.write_text("not part of the bundle")
    doc = json.loads((bundle / MANIFEST).read_text())
    if listed == "dup":
        doc["files"].append(doc["files"][0])
    else:
        digest = "sha256:" + hashlib.sha256(outside.read_bytes()).hexdigest()
        entry = {"path": listed, "format": "md", "mediaType": "text/markdown", "digest": digest}
        doc["files"].append({**entry, "size": outside.stat().st_size})
    (bundle / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ReportError, match="expected a guard report bundle manifest"):
        check_manifest(bundle)


def test_output_keeps_the_users_umask(result_file: Path, tmp_path: Path) -> None:
    import os

    old = os.umask(0o077)
    try:
        assert run(["report", str(result_file), "-f", "md", "-o", str(tmp_path / "r.md")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "r.md").stat().st_mode & 0o777 == 0o600


def test_previous_result_must_be_the_previous_bundles_scan(
    result_file: Path,
    previous_file: Path,
    keypair: KeyPair,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The deltas (new / resolved findings) are computed from --previous; the chain names
    --previous-bundle. A --previous that is not the chained bundle's scan makes the report's
    deltas about another period than its chain says."""
    first, second = tmp_path / "2026-10", tmp_path / "2026-11"
    assert _bundle(previous_file, first, keypair) == 0
    chain = ["--previous-bundle", str(first)]
    # the previous bundle reported on previous_file: a different --previous is refused
    other = tmp_path / "other.json"
    other.write_text(result_file.read_text())
    capsys.readouterr()
    assert _bundle(result_file, second, keypair, "--previous", str(other), *chain) == 2
    assert "--previous" in capsys.readouterr().err and not second.exists()
    assert _bundle(result_file, second, keypair, "--previous", str(previous_file), *chain) == 0
