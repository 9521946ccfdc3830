"""The payload bytes guard signs: serialize_statement's fast path writes what RFC 8785 writes."""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from guard.errors import UsageError
from guard.signing.bundle import serialize_statement
from guard.signing.hashing import hash_model
from guard.signing.oms import statement_for_manifest
from guard.signing.types import Serialization


def reference(statement: Mapping[str, Any]) -> bytes:
    """serialize_statement as it was before its fast path: rfc8785, else sorted compact JSON."""
    try:
        return rfc8785.dumps(dict(statement))
    except rfc8785.CanonicalizationError:
        pass
    try:
        text = json.dumps(
            statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as err:
        raise UsageError(f"the statement holds a number JSON cannot represent: {err}") from err
    return text.encode()


def outcome(fn: Any, value: Mapping[str, Any]) -> bytes | str:
    try:
        result: bytes = fn(value)
    except Exception as err:  # the same failure, message included, is the same behaviour
        return f"{type(err).__name__}: {err}"
    return result


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


class Ordered(dict[str, Any]):
    pass


# Every ASCII character, the edges of the BMP and beyond it (RFC 8785 sorts keys by UTF-16 code
# units: U+E000-U+FFFF sort after the surrogate pairs of U+10000 and up, unlike code points).
CHARS = [chr(c) for c in range(0x80)] + ["é", "\u2028", "\u2029", "\ud7ff", "\ue000", "\uffff", "😀", "𝄞"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 4 else 7)
    if choice == 0:
        return "".join(rng.choice(CHARS) for _ in range(rng.randrange(6)))
    if choice == 1:
        return rng.choice([0, 1, -1, 2**53 - 1, -(2**53) + 1, 2**53, -(2**53), 2**64, 10**21])
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return rng.choice([0.5, 1.0, 100.0, 1e21, 1e-7, -0.0, 3.0e-5, 123456789.125])
    if choice == 4:
        return rng.choice([Level.HIGH, Name("a\nb"), "x"])
    if choice in (5, 6):
        return rng.choice(["sha256", "a/b", 'q"uote\\', "\x00\x1f\x7f"])
    if choice in (7, 8):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 9:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    odd_keys = ["a", "B", "_type", "é", "\ue000", "😀", "z" * 3, ""]
    keys = odd_keys if choice == 10 else ["a", "b", "name", "x-y"]
    out: dict[str, Any] = {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return Ordered(out) if rng.random() < 0.1 else out


def test_random_statements_serialize_as_before() -> None:
    rng = random.Random(16)
    for _ in range(3000):
        value = {"_type": "t", "predicate": random_value(rng)}
        assert outcome(serialize_statement, value) == outcome(reference, value), value


@pytest.mark.parametrize(
    "predicate",
    [
        {"n": 2**60, "f": 0.5},  # beyond RFC 8785: the json fallback
        {"\ue000": 1, "😀": 2},  # UTF-16 order differs from code point order
        {"f": 100.0, "e": 1e21, "s": 1e-7},  # RFC 8785 writes 100, 1e+21, 1e-7
        {"bad": "\ud800"},  # a lone surrogate: refused alike
        {"nan": float("nan")},
        {1: "int key"},
        {"chars": "".join(CHARS), "level": Level.HIGH, "name": Name("x")},
    ],
)
def test_edge_statements_serialize_as_before(predicate: dict[Any, Any]) -> None:
    value = {"_type": "t", "predicate": predicate}
    assert outcome(serialize_statement, value) == outcome(reference, value)


def test_oms_statement_takes_the_fast_path_with_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    (model / "sub dir").mkdir(parents=True)
    for name in ["w.bin", 'q"uote\\.json', "é\u2028😀.txt", "tab\there", "sub dir/a-b", "sub dir/a.b"]:
        (model / name).write_bytes(name.encode())
    for serialization in (Serialization(), Serialization(method="shards", shard_size=3)):
        statement = statement_for_manifest(hash_model(model, serialization), "model")
        expected = rfc8785.dumps(statement)

        def refuse(value: object) -> bytes:
            raise AssertionError("an OMS statement should not need rfc8785")

        with monkeypatch.context() as patched:
            patched.setattr(rfc8785, "dumps", refuse)
            assert serialize_statement(statement) == expected


def test_deep_and_cyclic_statements_behave_as_before() -> None:
    deep: Any = "leaf"
    for _ in range(300):  # past the fast path's depth: rfc8785 writes it, as before
        deep = {"a": [deep]}
    value = {"_type": "t", "predicate": deep}
    assert serialize_statement(value) == reference(value) == rfc8785.dumps(value)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for fn in (reference, serialize_statement):
        with pytest.raises(RecursionError):
            fn({"_type": "t", "predicate": cyclic})
