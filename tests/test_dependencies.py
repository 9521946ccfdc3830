"""Runtime dependencies are what the runtime imports: every module of guard/ (but guard.testing,
not shipped) and webhook/ imports only the standard library, guard itself and packages that
pyproject.toml's dependencies declare; and each declared dependency is imported."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Declared but not imported by name: uvicorn loads them when installed (C HTTP parser, libuv loop).
LOADED_BY_OTHERS = {"httptools", "uvloop"}


def _runtime_imports() -> dict[str, set[str]]:
    """Top-level module name -> the runtime files importing it."""
    found: dict[str, set[str]] = {}
    files = [*(ROOT / "guard").rglob("*.py"), *(ROOT / "webhook").rglob("*.py")]
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("guard/testing/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(rel)
    return found


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}


def test_the_runtime_imports_only_declared_dependencies() -> None:
    declared, distributions = _declared(), packages_distributions()
    undeclared = {}
    for module, where in _runtime_imports().items():
        if module in sys.stdlib_module_names or module in {"guard", "webhook", "__future__"}:
            continue
        dists = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not dists & declared:
            undeclared[module] = ([str(d) for d in sorted(dists)] or ["not installed"], sorted(where)[:3])
    assert not undeclared, f"imported by the runtime but not in pyproject's dependencies: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    distributions = packages_distributions()
    imported = {canonicalize_name(d) for module in _runtime_imports() for d in distributions.get(module, [])}
    unused = _declared() - imported - LOADED_BY_OTHERS
    assert not unused, f"declared in pyproject's dependencies but imported by no runtime module: {unused}"


def test_model_signing_is_for_the_tests_only() -> None:
    """guard implements OMS itself; model-signing checks byte-compatibility in the tests."""
    assert "model_signing" not in _runtime_imports()
    assert "OpenSSL" not in _runtime_imports()
    assert "model-signing" not in _declared() and "pyopenssl" not in _declared()
