"""``ConfigPath``: a path in guard's configuration file, relative to that file.

A relative path in a config file means "beside this file" (as in kubeconfig), not "relative to
wherever the process happened to start": ``load_config`` passes the file's directory as the
validation context and every ``ConfigPath`` field is made absolute against it. A document
validated without a file (``parse_config`` on a dict) keeps relative paths as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

BASE_DIR_CONTEXT = "guard_config_dir"


def _rebase(value: Path, info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    base = context.get(BASE_DIR_CONTEXT)
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


ConfigPath = Annotated[Path, AfterValidator(_rebase)]
