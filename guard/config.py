"""guard's configuration: one pydantic tree, loaded and validated once, passed explicitly.

Sections owned by a capability live beside it (``guard.oci.settings``, ``guard.admission.settings``)
and are composed here, so that the whole file is validated in one go and an invalid value fails at
load with the dotted path of the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from guard.errors import ConfigError


class FrozenModel(BaseModel):
    """Base of every config model: immutable, and unknown keys are errors (a typo never passes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class GuardConfig(FrozenModel):
    """The root of guard's configuration file."""

    version: int = 1


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per bad field: ``source: path.to.field: what was expected (found: value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(part) for part in e["loc"]) or "(root)"
        found = e.get("input")
        shown = repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{source}: {loc}: {e['msg']} (found: {shown})")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> GuardConfig:
    """Validate an already-parsed document (dict) into a GuardConfig."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(data).__name__}")
    try:
        return GuardConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from err


def load_config(path: Path | None) -> GuardConfig:
    """Load and validate a YAML (or JSON) config file; ``None`` gives the embedded defaults."""
    if path is None:
        return GuardConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return parse_config(data, str(path))
