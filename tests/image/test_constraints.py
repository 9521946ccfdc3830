"""image/constraints.txt pins every runtime dependency of cnai-guard, each pin satisfying
pyproject.toml, so the image's wheelhouse (pip wheel -c) is reproducible."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate((ROOT / "image/constraints.txt").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and not any(c in version for c in "<>=!~*,; "), (
            f"image/constraints.txt:{number}: expected NAME==VERSION, found {line!r}"
        )
        key = canonicalize_name(name)
        assert key not in pins, f"image/constraints.txt:{number}: {name} pinned twice"
        pins[key] = version
    return pins


def test_every_runtime_dependency_is_pinned_and_satisfies_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate({"sys_platform": "linux"}):
            continue
        key = canonicalize_name(requirement.name)
        assert key in pins, (
            f"{requirement.name} (pyproject dependency) is not pinned in image/constraints.txt"
        )
        assert requirement.specifier.contains(pins[key], prereleases=True), (
            f"image/constraints.txt pins {requirement.name}=={pins[key]}, "
            f"pyproject wants {requirement.specifier}"
        )


def test_guard_itself_is_not_pinned() -> None:
    assert "cnai-guard" not in _pins()
