"""The control catalogue: complete for every policy, well-formed, and shipped with the package."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from guard.errors import ConfigError
from guard.policy.library import default_library_dir, load_library
from guard.report.catalogue import (
    catalogue_dir,
    cited_controls,
    load_catalogue,
    missing_controls,
    policy_controls,
)


def test_every_control_a_policy_cites_is_in_the_catalogue() -> None:
    library = load_library(default_library_dir())
    missing = missing_controls(library, load_catalogue(catalogue_dir(default_library_dir())))
    assert missing == {}, f"policies cite controls missing from policies/controls/: {missing}"


def test_the_policies_do_cite_controls() -> None:
    """The check above is not vacuous: the regex finds the controls of every policy."""
    cited = policy_controls(load_library(default_library_dir()))
    assert all(cited.values()), [name for name, ids in cited.items() if not ids]
    assert "NIST-AI-RMF MEASURE-2.12" in cited["carbon.budget"]
    assert "PSS-Restricted" in cited["tenancy.isolation"]  # an inline "controls": [...] list


def test_a_policy_citing_an_unknown_control_is_reported(tmp_path: Path) -> None:
    library = load_library(default_library_dir())
    catalogue = load_catalogue(catalogue_dir(default_library_dir()))
    text = library.policy("carbon.budget").file.text.replace("ISO-42001 A.5.5", "ISO-42001 A.99")
    assert "ISO-42001 A.99" in cited_controls(text)
    policy = library.policy("carbon.budget")
    changed = replace(policy, file=replace(policy.file, text=text))
    patched = replace(library, policies=(changed,))
    assert missing_controls(patched, catalogue) == {"carbon.budget": ["ISO-42001 A.99"]}


def test_catalogue_frameworks_and_entries() -> None:
    catalogue = load_catalogue()
    frameworks = {f.id for f in catalogue.frameworks}
    assert {"EU-AI-Act", "NIST-AI-RMF", "ISO-42001", "OWASP-LLM-2025", "SLSA"} <= frameworks
    by_framework = {fid: catalogue.select([fid]) for fid in frameworks}
    assert len(by_framework["NIST-AI-RMF"]) == 72  # every subcategory of AI RMF 1.0
    assert len(by_framework["ISO-42001"]) == 38  # Annex A: 38 controls
    assert len(by_framework["OWASP-LLM-2025"]) == 10
    # the carbon policy's ISO control moves from A.5.4 to A.5.5: both are real Annex A controls
    assert catalogue.get("ISO-42001 A.5.4") is not None
    assert catalogue.get("ISO-42001 A.5.5") is not None
    for control in catalogue.controls:
        assert control.id and control.title and control.family and control.framework


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("framework: {id: X, name: X, version: '1', source: s}\ncontrols: []\n", "expected a control"),
        ("not: [valid", "expected a control"),
        (
            "framework: {id: X, name: X, version: '1', source: s}\ncontrols:\n"
            "  - {id: A, title: t, family: f}\n  - {id: A, title: t, family: f}\n",
            "already defined",
        ),
    ],
)
def test_malformed_catalogue(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "x.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_catalogue(tmp_path)


def test_empty_catalogue_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="found none"):
        load_catalogue(tmp_path)
