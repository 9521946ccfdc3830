"""A Rego policy library on disk: ``<dir>/<bundle>/<policy>.rego`` with ``<policy>_test.rego``
and ``samples/{allowed,denied}/<policy>--<case>.json`` beside it, plus helpers under ``<dir>/lib/``.

Loading checks the layout (a policy's package is ``guard.<bundle>.<policy>``) and finds which
policies define ``deny`` and ``warn`` rules, so that engines can query exactly those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from guard.errors import PolicyLibraryError
from guard.shipped import shipped_dir

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
_DECISION_RULE = re.compile(r"^(deny|warn)\s+(?:contains|if|:=|=|\[)", re.MULTILINE)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LIB_DIR = "lib"
PACKAGE_ROOT = "guard"


@dataclass(frozen=True)
class RegoFile:
    path: Path
    text: str
    package: str


@dataclass(frozen=True)
class Policy:
    """One policy: ``name`` is ``<bundle>.<policy>``, ``package`` is ``guard.<bundle>.<policy>``."""

    name: str
    package: str
    file: RegoFile
    rules: tuple[str, ...]  # which of "deny" / "warn" it defines
    directory: Path

    @property
    def test_file(self) -> Path:
        return self.file.path.with_name(f"{self.file.path.stem}_test.rego")

    def samples(self, outcome: str) -> list[Path]:
        """``samples/<outcome>/<policy>--<case>.json`` (or ``<policy>.json``) beside the policy."""
        stem = self.file.path.stem
        directory = self.directory / "samples" / outcome
        return sorted([*directory.glob(f"{stem}--*.json"), *directory.glob(f"{stem}.json")])


@dataclass(frozen=True)
class PolicyLibrary:
    root: Path
    policies: tuple[Policy, ...]
    helpers: tuple[RegoFile, ...]
    tests: tuple[RegoFile, ...]

    def modules(self, *, with_tests: bool = False) -> list[RegoFile]:
        files = [p.file for p in self.policies] + list(self.helpers)
        return files + list(self.tests) if with_tests else files

    def policy(self, name: str) -> Policy:
        for p in self.policies:
            if p.name == name:
                return p
        raise PolicyLibraryError(
            f"no policy {name!r} in {self.root} (known: {[p.name for p in self.policies]})"
        )


def default_library_dir() -> Path:
    """The library shipped with guard, with its tests and samples: ``policies/`` of the source tree
    when running from a checkout, else the copy the wheel installs (``guard.shipped``)."""
    return shipped_dir("policies")


def _read(path: Path) -> RegoFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyLibraryError(f"cannot read policy file {path}: {err}") from err
    match = _PACKAGE.search(text)
    if match is None:
        raise PolicyLibraryError(f"{path}: expected a 'package guard.<bundle>.<policy>' line, found none")
    return RegoFile(path=path, text=text, package=match.group(1))


def load_library(root: Path | None = None) -> PolicyLibrary:
    """Read and check a library directory (``None``: the shipped library)."""
    root = root or default_library_dir()
    if not root.is_dir():
        raise PolicyLibraryError(f"policy directory {root} does not exist or is not a directory")
    policies: list[Policy] = []
    helpers: list[RegoFile] = []
    tests: list[RegoFile] = []
    for path in sorted(root.rglob("*.rego")):
        rel = path.relative_to(root)
        rego = _read(path)
        if path.stem.endswith("_test"):
            tests.append(rego)
            continue
        if rel.parts[0] == LIB_DIR:
            if not rego.package.startswith(f"{PACKAGE_ROOT}.{LIB_DIR}."):
                raise PolicyLibraryError(
                    f"{path}: helpers under lib/ must be in package guard.lib.*, found {rego.package}"
                )
            helpers.append(rego)
            continue
        if len(rel.parts) != 2 or not _NAME.match(rel.parts[0]) or not _NAME.match(path.stem):
            hint = " (give the library root, the directory of the bundles)" if len(rel.parts) == 1 else ""
            raise PolicyLibraryError(
                f"{path}: expected <bundle>/<policy>.rego with lowercase snake_case names, found {rel}{hint}"
            )
        bundle, name = rel.parts[0], path.stem
        expected = f"{PACKAGE_ROOT}.{bundle}.{name}"
        if rego.package != expected:
            raise PolicyLibraryError(f"{path}: expected package {expected}, found {rego.package}")
        rules = tuple(sorted(set(_DECISION_RULE.findall(rego.text))))
        if not rules:
            raise PolicyLibraryError(
                f"{path}: a policy must define 'deny contains ...' or 'warn contains ...'"
            )
        policies.append(Policy(f"{bundle}.{name}", expected, rego, rules, path.parent))
    if not policies:
        raise PolicyLibraryError(f"policy directory {root} holds no policies (<bundle>/<policy>.rego)")
    return PolicyLibrary(root=root, policies=tuple(policies), helpers=tuple(helpers), tests=tuple(tests))


def layout_problems(library: PolicyLibrary) -> list[str]:
    """What the library lacks: a test file per policy, allowed and denied samples per policy."""
    problems = []
    for p in library.policies:
        if not p.test_file.is_file():
            problems.append(f"{p.name}: missing test file {p.test_file}")
        for outcome in ("allowed", "denied"):
            if not p.samples(outcome):
                where = p.directory / "samples" / outcome / f"{p.file.path.stem}--*.json"
                problems.append(f"{p.name}: no {outcome} samples ({where})")
    return problems
