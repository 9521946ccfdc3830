"""Where the files guard ships live: the policy library (``policies/``) and the attestation specs
(``attestations/``) exist once, at the top of the source tree.

Running from a source checkout (an editable install, or ``PYTHONPATH``), they are read there; the
wheel carries them as ``guard/data/policies`` and ``guard/data/attestations`` (``setup.py``'s
build step copies them in; the source tree holds no copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Shipped = Literal["policies", "attestations"]


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def checkout_dir(name: Shipped) -> Path:
    """``<checkout>/<name>``: the top-level directory beside the ``guard`` package."""
    return package_dir().parent / name


def installed_dir(name: Shipped) -> Path:
    """``guard/data/<name>``: where an installed wheel carries it."""
    return package_dir() / "data" / name


def in_checkout() -> bool:
    """Running from a source tree (its ``pyproject.toml`` beside the package), not a wheel."""
    return (package_dir().parent / "pyproject.toml").is_file()


def shipped_dir(name: Shipped) -> Path:
    """The directory of ``name`` this guard runs with: the checkout's, else the wheel's."""
    checkout = checkout_dir(name)
    return checkout if in_checkout() and checkout.is_dir() else installed_dir(name)
