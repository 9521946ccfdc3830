"""The control catalogue shipped with guard: ``policies/controls/*.yaml`` (in a wheel:
``guard/data/policies/controls``), one file per framework, each control with id, title, framework
and family; and which policies of a library cite which controls.

Control ids are the strings policies put in their violations' ``controls`` (``"NIST-AI-RMF
MEASURE-2.12"``, ``"ISO-42001 A.5.5"``), so a finding maps to the catalogue with no other table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import ConfigError
from guard.policy.library import PolicyLibrary, default_library_dir
from guard.textfile import read_user_text

CONTROLS_DIR = "controls"


class Control(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    framework: str = Field(min_length=1)
    family: str = Field(min_length=1)


class Framework(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str
    version: str
    source: str


class _EntryFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    class _Entry(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        id: str = Field(min_length=1)
        title: str = Field(min_length=1)
        family: str = Field(min_length=1)
        framework: str | None = None  # defaults to the file's framework id

    framework: Framework
    controls: list[_Entry] = Field(min_length=1)


@dataclass(frozen=True)
class Catalogue:
    """Every control guard knows, in file order, by id."""

    frameworks: tuple[Framework, ...]
    controls: tuple[Control, ...]
    by_id: Mapping[str, Control] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {c.id: c for c in self.controls})

    def get(self, control_id: str) -> Control | None:
        return self.by_id.get(control_id)

    def __contains__(self, control_id: object) -> bool:
        return isinstance(control_id, str) and control_id in self.by_id

    def select(self, frameworks: Iterable[str] | None) -> tuple[Control, ...]:
        """The controls of the given framework ids (all when ``None``)."""
        if frameworks is None:
            return self.controls
        wanted = set(frameworks)
        return tuple(c for c in self.controls if c.framework in wanted)


def catalogue_dir(library_root: Path | None = None) -> Path:
    return (library_root or default_library_dir()) / CONTROLS_DIR


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Read ``directory`` (default: the shipped catalogue). A malformed file or a duplicate id is a
    ConfigError naming the file."""
    directory = directory or catalogue_dir()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        raise ConfigError(f"control catalogue {directory}: expected <framework>.yaml files, found none")
    frameworks: list[Framework] = []
    controls: list[Control] = []
    seen: dict[str, Path] = {}
    for path in files:
        text = read_user_text(path, what="control catalogue file", expected="UTF-8 YAML", error=ConfigError)
        try:
            parsed = _EntryFile.model_validate(yaml.safe_load(text))
        except (yaml.YAMLError, ValidationError) as err:
            raise ConfigError(f"{path}: expected a control catalogue (framework, controls[]): {err}") from err
        frameworks.append(parsed.framework)
        for entry in parsed.controls:
            if entry.id in seen:
                raise ConfigError(f"{path}: control {entry.id!r} is already defined in {seen[entry.id]}")
            seen[entry.id] = path
            controls.append(
                Control(
                    id=entry.id,
                    title=entry.title,
                    family=entry.family,
                    framework=entry.framework or parsed.framework.id,
                )
            )
    return Catalogue(frameworks=tuple(frameworks), controls=tuple(controls))


# `controls := ["A", "B"]` at the top of a policy, or `"controls": ["A"]` inside a violation.
_CONTROL_LIST = re.compile(r'(?:^controls\s*:=|"controls"\s*:)\s*\[([^\]]*)\]', re.MULTILINE)
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def cited_controls(text: str) -> set[str]:
    """The control ids a Rego policy's text cites in literal ``controls`` lists."""
    return {s for block in _CONTROL_LIST.findall(text) for s in _STRING.findall(block)}


def policy_controls(library: PolicyLibrary) -> Mapping[str, frozenset[str]]:
    """policy name (``supply_chain.signature``) -> the controls it cites."""
    return {p.name: frozenset(cited_controls(p.file.text)) for p in library.policies}


def missing_controls(library: PolicyLibrary, catalogue: Catalogue) -> dict[str, list[str]]:
    """Policies citing controls the catalogue lacks: policy name -> the unknown ids."""
    out: dict[str, list[str]] = {}
    for name, ids in policy_controls(library).items():
        unknown = sorted(i for i in ids if i not in catalogue)
        if unknown:
            out[name] = unknown
    return out
