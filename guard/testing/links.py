"""A symlink planted where a command is told to write: the attack on a shared output directory
(someone who can write to it links ``report.html`` to a file of the user's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VICTIM_TEXT = "the user's own file\n"


@dataclass(frozen=True)
class PlantedLink:
    path: Path  # the link, in the shared directory: where the command writes
    victim: Path  # the user's file it points to

    def assert_replaced(self) -> None:
        """The command replaced the link with its output and left the user's file alone."""
        assert self.victim.read_text() == VICTIM_TEXT
        assert not self.path.is_symlink()


def plant_link(root: Path, name: str) -> PlantedLink:
    """Under ``root``: a user's file ``home/notes.txt``, and ``shared/<name>`` a symlink to it."""
    victim = root / "home" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    path = root / "shared" / name
    path.parent.mkdir()
    path.symlink_to(victim)
    return PlantedLink(path, victim)
