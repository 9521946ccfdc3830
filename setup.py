"""The build step pyproject.toml cannot declare: the top-level ``policies/`` and ``attestations/``
(kept once, in the source tree) go into the wheel as ``guard/data/policies`` and
``guard/data/attestations``, where an installed guard reads them (``guard.shipped``).

An editable install copies nothing: it runs from the checkout and reads the top-level directories.
Everything else is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = {"policies": "guard/data/policies", "attestations": "guard/data/attestations"}


class BuildPyWithShippedData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, target in SHIPPED.items():
            if not Path(source, "README.md").is_file():  # an sdist without them cannot build guard
                raise SystemExit(f"{source}/ is missing from the source tree: the wheel needs it")
            self.copy_tree(source, str(Path(self.build_lib, target)))


setup(cmdclass={"build_py": BuildPyWithShippedData})
