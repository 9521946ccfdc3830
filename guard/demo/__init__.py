"""``guard demo``: the walk-through, one module per section, using guard as a user would.

Each section runs the real CLI (``DemoContext.guard``: the ``$ guard ...`` line it prints is the
command it runs, in the work directory) and checks what it answered; a section that needs a
registry uses docker-registry when present, else a local mirror (guard.oci.mirror). Test doubles
(guard.testing) are imported only when present, and only to start docker-registry.

- ``context``: the shared context, ``DemoFailed``, running a command
- ``model``: the demo's model files
- ``signing``, ``oci``, ``attest``, ``policy``, ``webhook`` (with ``publish``, ``tls``): the sections
- ``run``: the order of the sections, ``run_demo``, the final line
"""

from guard.demo.context import DemoContext, DemoFailed
from guard.demo.run import SECTIONS, DemoStep, prepare_workdir, run_demo

__all__ = ["SECTIONS", "DemoContext", "DemoFailed", "DemoStep", "prepare_workdir", "run_demo"]
