"""The shipped library's read analysis, kept in guard/policy/library_reads.json (guard.policy.kept_reads).

The decision caches are keyed by what the analysis says each policy reads: the kept file must be
exactly what the analysis finds now, and be used for no other library than the one it was made of."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guard.config import GuardConfig
from guard.policy import embedded, kept_reads, reads
from guard.policy.cache import VOLATILE
from guard.policy.embedded import EmbeddedEngine, analyse, new_regorus_engine
from guard.policy.engine import make_engine
from guard.policy.library import default_library_dir, load_library
from guard.policy.reads import LibraryReads


def _engine() -> EmbeddedEngine:
    engine = make_engine(GuardConfig().policy)
    assert isinstance(engine, EmbeddedEngine)
    return engine


def test_the_kept_file_is_the_analysis_of_the_shipped_library_now() -> None:
    key, found = kept_reads.shipped()
    assert kept_reads.KEPT.read_text(encoding="utf-8") == kept_reads.encode(key, found), (
        "guard/policy/library_reads.json is stale: run `make policy-reads`"
    )
    assert kept_reads.main(["--check"]) == 0
    engine = _engine()
    assert kept_reads.lookup(engine.texts, VOLATILE) == found
    assert found.rules and found.packages  # an analysis, not an empty file


def test_an_engine_of_the_shipped_library_takes_the_kept_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    embedded._READS.clear()

    def refuse(_engine: object) -> None:
        raise AssertionError("the shipped library was analysed again")

    monkeypatch.setattr(embedded, "analyse", refuse)
    engine = _engine()
    _key, found = _kept()
    assert engine.reads == {
        p.name: found.packages[tuple(p.package.split("."))] for p in engine.library.policies
    }
    assert engine.template_cache is not None


def _kept() -> tuple[str, LibraryReads]:
    text = kept_reads.KEPT.read_text(encoding="utf-8")
    key: str = json.loads(text)["key"]
    found = kept_reads.decode(text, key)
    assert found is not None
    return key, found


def test_another_library_is_analysed_not_looked_up(tmp_path: Path) -> None:
    """A library with one policy more (a config's own directory) has another key: its reads are
    found by the analysis, the new policy's field among them."""
    library_dir = tmp_path / "policies"
    shutil.copytree(default_library_dir(), library_dir)
    (library_dir / "supply_chain" / "extra.rego").write_text(
        'package guard.supply_chain.extra\n\ndeny contains "odd" if input.workload.extraField == "odd"\n'
    )
    library = load_library(library_dir)
    embedded._READS.clear()
    engine = EmbeddedEngine(library, lambda _name: "deny")
    assert kept_reads.lookup(engine.texts, VOLATILE) is None
    assert engine.reads["supply_chain.extra"] == frozenset({("workload", "extraField")})
    assert engine.reads.keys() == {p.name for p in library.policies}
    fresh = analyse(new_regorus_engine(library.modules(), engine.combined))
    assert engine.reads["supply_chain.extra"] == fresh.packages[("guard", "supply_chain", "extra")]


def test_the_key_binds_every_input_of_the_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _engine().texts
    key = kept_reads.library_key(texts, VOLATILE)
    assert key is not None
    assert kept_reads.library_key(texts, VOLATILE) == key  # stable
    assert kept_reads.library_key(texts[:-1], VOLATILE) != key
    assert kept_reads.library_key((*texts[:-1], texts[-1] + " "), VOLATILE) != key
    # the same characters cut into texts differently
    assert kept_reads.library_key((texts[0] + texts[1], *texts[2:]), VOLATILE) != key
    assert kept_reads.library_key(texts, VOLATILE[:-1]) != key
    monkeypatch.setattr(kept_reads, "_regorus_version", lambda: "0.99.0")
    assert kept_reads.library_key(texts, VOLATILE) != key
    monkeypatch.setattr(kept_reads, "_regorus_version", lambda: None)
    assert kept_reads.library_key(texts, VOLATILE) is None  # regorus unknown: nothing kept is used


def test_the_key_follows_the_analysis_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    texts = _engine().texts
    key = kept_reads.library_key(texts, VOLATILE)
    changed = tmp_path / "reads.py"
    changed.write_bytes(Path(str(reads.__file__)).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(reads, "__file__", str(changed))
    assert kept_reads.library_key(texts, VOLATILE) not in (key, None)
    monkeypatch.setattr(reads, "__file__", str(tmp_path / "gone.py"))
    assert kept_reads.library_key(texts, VOLATILE) is None


@pytest.mark.parametrize(
    "garble",
    [
        lambda d: "not json",
        lambda d: json.dumps([d]),
        lambda d: json.dumps({**d, "format": 2}),
        lambda d: json.dumps({**d, "key": "0" * 64}),
        lambda d: json.dumps({k: v for k, v in d.items() if k != "rules"}),
        lambda d: json.dumps({**d, "packages": [[["guard"], "everything"]]}),
        lambda d: json.dumps({**d, "packages": [[["guard"], [[1]]]]}),
        lambda d: json.dumps({**d, "rules": [[["guard"], "deny"]]}),
        lambda d: json.dumps({**d, "emptiness": {"guard": []}}),
        lambda d: json.dumps({**d, "rules": [[["guard"], 7, []]]}),
    ],
)
def test_a_kept_file_not_for_this_library_or_malformed_is_not_used(garble: object, tmp_path: Path) -> None:
    document = json.loads(kept_reads.KEPT.read_text(encoding="utf-8"))
    bad = tmp_path / "library_reads.json"
    bad.write_text(garble(document))  # type: ignore[operator]
    assert kept_reads.lookup(_engine().texts, VOLATILE, bad) is None


def test_an_unreadable_kept_file_is_not_used(tmp_path: Path) -> None:
    texts = _engine().texts
    assert kept_reads.lookup(texts, VOLATILE, tmp_path / "missing.json") is None
    (tmp_path / "latin.json").write_bytes(b"\xff\xfe")
    assert kept_reads.lookup(texts, VOLATILE, tmp_path / "latin.json") is None


def test_the_kept_file_round_trips() -> None:
    key, found = _kept()
    assert kept_reads.decode(kept_reads.encode(key, found), key) == found
    assert kept_reads.decode(kept_reads.encode(key, found), "1" * 64) is None


def test_check_reports_a_stale_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "library_reads.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(kept_reads, "KEPT", stale)
    assert kept_reads.main(["--check"]) == 1
    assert "run make policy-reads" in capsys.readouterr().err
    assert kept_reads.main([]) == 0
    assert kept_reads.main(["--check"]) == 0
    assert kept_reads.main(["--bogus"]) == 2
