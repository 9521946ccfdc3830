"""The read analysis of the shipped policy library, kept beside the code (``library_reads.json``).

``guard.policy.reads.library_reads`` of the shipped library costs ~70 ms wherever a process builds
its first engine (regorus' syntax tree as 4 MB of JSON, its parse, the walk): the largest single
step of ``guard serve``'s start-up after the imports, and of ``guard check``. What it finds depends
only on the module texts (the library's and the generated combined modules), on the input fields
treated as volatile, on the analysis (this package's ``reads.py``) and on the regorus that parses
the texts. The kept result carries a SHA-256 of all of them; it is used only when the library at
hand gives the same key, and everything else (a config's own policies, a changed analysis, another
regorus, an unreadable or malformed file) is analysed as before.

The analysis keys the decision caches: a wrong one would let two inputs that differ where a policy
reads share a decision. Hence the exact key, and ``tests/policy/test_kept_reads.py``, which fails
when the kept file is not what the analysis finds now. Write it again with ``make policy-reads``
(``python -m guard.policy.kept_reads``) after changing a policy, ``reads.py`` or regorus.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path as FilePath
from typing import Any

from guard.policy import reads
from guard.policy.reads import LibraryReads, Path, RuleKey

KEPT = FilePath(__file__).with_name("library_reads.json")
FORMAT = 1
REGORUS_DISTRIBUTION = "gordon-to-regorus"


def _regorus_version() -> str | None:
    try:
        return metadata.version(REGORUS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def library_key(texts: Sequence[str], volatile: Iterable[Path]) -> str | None:
    """The key of a library's analysis (None when the regorus version or the analysis' source
    cannot be read: nothing kept can then be trusted to match)."""
    version = _regorus_version()
    if version is None:
        return None
    try:
        source = FilePath(reads.__file__).read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256()
    parts = [f"format {FORMAT}".encode(), f"regorus {version}".encode(), source]
    parts.append(json.dumps(sorted(list(p) for p in volatile)).encode())
    parts.extend(text.encode() for text in texts)
    for part in parts:  # each part length-prefixed: no two lists of texts give the same bytes
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _path(value: Any) -> Path:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValueError("expected a path (a list of strings)")
    return tuple(value)


def _paths(value: Any) -> frozenset[Path]:
    if not isinstance(value, list):
        raise ValueError("expected a list of paths (lists of strings)")
    return frozenset(_path(p) for p in value)


def _rules(value: Any) -> dict[RuleKey, frozenset[Path]]:
    if not isinstance(value, list):
        raise ValueError("expected a list of [package, rule, paths]")
    out: dict[RuleKey, frozenset[Path]] = {}
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], str)):
            raise ValueError("expected [package, rule, paths]")
        out[(_path(entry[0]), entry[1])] = _paths(entry[2])
    return out


def decode(text: str, key: str) -> LibraryReads | None:
    """The kept analysis in ``text`` when it was made for ``key``; None otherwise, or when the
    text is not the kept format."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("key") != key:
            return None
        packages_list = document["packages"]
        if not isinstance(packages_list, list) or not all(
            isinstance(e, list) and len(e) == 2 for e in packages_list
        ):
            return None
        packages = {_path(name): _paths(paths) for name, paths in packages_list}
        return LibraryReads(packages, _rules(document["rules"]), _rules(document["emptiness"]))
    except (ValueError, KeyError, TypeError):
        return None


def lookup(texts: Sequence[str], volatile: Iterable[Path], kept: FilePath = KEPT) -> LibraryReads | None:
    """The kept analysis of the library of ``texts``, or None (not kept, or not for this library)."""
    key = library_key(texts, volatile)
    if key is None:
        return None
    try:
        text = kept.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return decode(text, key)


def _sorted_paths(paths: frozenset[Path]) -> list[list[str]]:
    return [list(p) for p in sorted(paths)]


def encode(key: str, found: LibraryReads) -> str:
    """The kept file's text: one line per package or rule, sorted, so that a change reads as a diff."""

    def rules(table: dict[RuleKey, frozenset[Path]]) -> list[str]:
        return [
            json.dumps([list(package), rule, _sorted_paths(paths)])
            for (package, rule), paths in sorted(table.items())
        ]

    packages = [json.dumps([list(p), _sorted_paths(paths)]) for p, paths in sorted(found.packages.items())]
    lines = [
        "{",
        '"comment": "written by make policy-reads (python -m guard.policy.kept_reads): what each policy '
        'of the shipped library reads; used only by the library of the same key",',
        f'"format": {FORMAT},',
        f'"key": "{key}",',
        '"packages": [\n' + ",\n".join(packages) + "\n],",
        '"rules": [\n' + ",\n".join(rules(found.rules)) + "\n],",
        '"emptiness": [\n' + ",\n".join(rules(found.emptiness)) + "\n]",
        "}",
    ]
    return "\n".join(lines) + "\n"


def shipped() -> tuple[str, LibraryReads]:
    """The key and the analysis, made now, of the shipped library as the embedded engine loads it."""
    from guard.config import GuardConfig  # noqa: PLC0415 - only to write or check the kept file
    from guard.policy.cache import VOLATILE  # noqa: PLC0415
    from guard.policy.embedded import EmbeddedEngine, analyse, new_regorus_engine  # noqa: PLC0415
    from guard.policy.engine import make_engine  # noqa: PLC0415

    engine = make_engine(GuardConfig().policy)
    if not isinstance(engine, EmbeddedEngine):  # pragma: no cover - the default is embedded
        raise AssertionError("the default policy engine is not the embedded one")
    key = library_key(engine.texts, VOLATILE)
    if key is None:
        raise SystemExit(f"cannot key the analysis: is {REGORUS_DISTRIBUTION} installed?")
    return key, analyse(new_regorus_engine(engine.library.modules(), engine.combined))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--check"]):
        print("usage: python -m guard.policy.kept_reads [--check]", file=sys.stderr)
        return 2
    key, found = shipped()
    text = encode(key, found)
    if args == ["--check"]:
        current = KEPT.read_text(encoding="utf-8") if KEPT.is_file() else ""
        if current != text:
            print(
                f"{KEPT} is not the analysis of the shipped library: run make policy-reads", file=sys.stderr
            )
            return 1
        return 0
    KEPT.write_text(text, encoding="utf-8")
    print(f"wrote {KEPT} ({len(found.rules)} rules of {len(found.packages)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
