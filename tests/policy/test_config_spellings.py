"""The config says what the CLI says: ``key`` (``--key``), ``identity`` / ``identityRegex``
(``--identity`` / ``--identity-regex``). The old spellings (``public_key``, ``subject``,
``subject_regex``) still load, with a warning; both spellings of one key at once are an error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from guard.config import KeyAuthority, KeylessAuthority, parse_config
from guard.errors import ConfigError

ISSUER = "https://token.actions.githubusercontent.com"


def _authority(tmp_path: Path, **fields: str) -> object:
    return parse_config({"authorities": {"a": fields}}, base_dir=tmp_path).authorities["a"]


def test_key_and_its_old_spelling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    new = _authority(tmp_path, kind="key", key="release.pub.pem")
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        old = _authority(tmp_path, kind="key", public_key="release.pub.pem")
    assert isinstance(new, KeyAuthority) and isinstance(old, KeyAuthority)
    assert new.key == old.key == tmp_path / "release.pub.pem"
    assert "authorities.a.public_key is a deprecated spelling; write authorities.a.key" in caplog.text


def test_identity_and_its_old_spellings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        old = _authority(tmp_path, kind="keyless", issuer=ISSUER, subject="ci@example.com")
        old_re = _authority(tmp_path, kind="keyless", issuer=ISSUER, subject_regex=r".+@example\.com")
    assert isinstance(old, KeylessAuthority) and old.identity == "ci@example.com"
    assert isinstance(old_re, KeylessAuthority) and old_re.identity_regex == r".+@example\.com"
    assert "authorities.a.subject is a deprecated spelling; write authorities.a.identity" in caplog.text
    written = "authorities.a.subject_regex is a deprecated spelling; write authorities.a.identityRegex"
    assert written in caplog.text


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "key", "key": "a.pub", "public_key": "b.pub"},
        {"kind": "key", "key": "a.pub", "public_key": "a.pub"},  # even equal: one key, one spelling
        {"kind": "keyless", "issuer": ISSUER, "identity": "a@x", "subject": "b@x"},
        {"kind": "keyless", "issuer": ISSUER, "identityRegex": "a", "subject_regex": "a"},
        {"kind": "keyless", "issuer": ISSUER, "identity_regex": "a", "subject_regex": "a"},
    ],
)
def test_both_spellings_at_once_are_an_error(tmp_path: Path, fields: dict[str, str]) -> None:
    expected = r"authorities\.a: expected the key (key|identity|identityRegex) once"
    with pytest.raises(ConfigError, match=expected):
        _authority(tmp_path, **fields)


def test_tenant_identities_take_both_spellings(caplog: pytest.LogCaptureFixture) -> None:
    tenant = {"name": "a", "namespaces": ["a"]}
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = parse_config(
            {"tenants": [{**tenant, "identities": [{"issuer": ISSUER, "subject_regex": ".+"}]}]}
        )
    assert config.tenants[0].identities[0].identity_regex == ".+"
    assert "tenants.0.identities.0.subject_regex is a deprecated spelling" in caplog.text
    with pytest.raises(ConfigError, match=r"tenants\.0\.identities\.0: expected the key identity once"):
        parse_config(
            {"tenants": [{**tenant, "identities": [{"issuer": ISSUER, "subject": "x", "identity": "y"}]}]}
        )
