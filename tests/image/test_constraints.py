"""image/constraints.txt pins every runtime dependency of cnai-guard, each pin satisfying
pyproject.toml, so the image's wheelhouse (pip wheel -c) is reproducible."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
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


def _closure() -> set[str]:
    """The runtime dependencies of cnai-guard and theirs, by the installed distributions' metadata
    (extras followed, markers evaluated here)."""
    from importlib.metadata import PackageNotFoundError, requires

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(spec), "") for spec in project["dependencies"]]
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(requirement.name)
        names.add(key)
        for wanted in requirement.extras or {""}:
            if (key, wanted) in seen:
                continue
            seen.add((key, wanted))
            try:
                specs = requires(requirement.name) or []
            except PackageNotFoundError:
                pytest.fail(f"{requirement.name} is not installed: install guard first (make test does)")
            todo += [(Requirement(s), wanted) for s in specs]
    return names


def test_the_constraints_pin_the_runtime_closure_and_nothing_else() -> None:
    """What pip wheel resolves for the image is what the runtime needs: no package left over from a
    removed dependency (model-signing, fastapi, pyopenssl), none missing."""
    closure, pins = _closure(), set(_pins())
    assert not closure - pins, f"runtime dependencies not pinned: {sorted(closure - pins)}"
    assert not pins - closure, (
        f"pinned but not a runtime dependency (run make image-constraints): {sorted(pins - closure)}"
    )
