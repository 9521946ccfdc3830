"""guard.textfile: one reader for user-named text files (config, predicate, metadata, model card)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.errors import ConfigError, UsageError
from guard.textfile import read_user_text


def test_reads_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("a: é\n", encoding="utf-8")
    assert read_user_text(tmp_path / "f.yaml", what="config file", expected="UTF-8 YAML") == "a: é\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "predicate file {p} does not exist"),
        (lambda p: p.mkdir(), "predicate file {p} is a directory, expected a file"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "{p}: expected a UTF-8 JSON predicate, found binary data"),
    ],
)
def test_each_failure_says_what_was_expected_and_found(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "p.json"
    assert callable(make)
    make(path)
    with pytest.raises(UsageError) as info:
        read_user_text(path, what="predicate file", expected="a UTF-8 JSON predicate")
    assert str(info.value).startswith(message.format(p=path))


def test_the_error_class_is_the_callers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .* does not exist"):
        read_user_text(tmp_path / "none.yaml", what="config file", expected="UTF-8 YAML", error=ConfigError)
