"""Reading a text file the user named, with an error that says what was expected and found."""

from __future__ import annotations

from pathlib import Path

from guard.errors import GuardError, UsageError


def read_user_text(path: Path, *, what: str, expected: str, error: type[GuardError] = UsageError) -> str:
    """``path``'s UTF-8 text. A missing file, a directory, an unreadable file or binary data raises
    ``error`` naming ``what`` the file is (e.g. "config file") and what was ``expected`` of its
    content (e.g. "UTF-8 YAML")."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise error(f"{what} {path} does not exist") from err
    except IsADirectoryError as err:
        raise error(f"{what} {path} is a directory, expected a file") from err
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise error(f"{path}: expected {expected}, found binary data ({err})") from err
