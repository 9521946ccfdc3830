"""The guard program loads no pydantic plugin (one installed beside it would see every validation of
its config and of the documents it is handed), unless PYDANTIC_DISABLE_PLUGINS says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  containers:
    - name: c
      image: registry.example.com/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
"""


def _plugin(root: Path) -> None:
    """A distribution with a pydantic plugin that leaves a mark when it is loaded."""
    (root / "markplugin.py").write_text(
        "import os\n"
        "open(os.environ['GUARD_TEST_PLUGIN_MARK'], 'w').write('loaded')\n"
        "class Plugin:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\n"
        "plugin = Plugin()\n"
    )
    info = root / "markplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: markplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pydantic]\nmark = markplugin:plugin\n")


@pytest.mark.parametrize(("setting", "loaded"), [(None, False), ("", True)])
def test_the_program_loads_no_pydantic_plugin_unless_told_to(
    tmp_path: Path, setting: str | None, loaded: bool
) -> None:
    _plugin(tmp_path)
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    mark = tmp_path / "mark"
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    env["GUARD_TEST_PLUGIN_MARK"] = str(mark)
    if setting is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = setting
    done = subprocess.run(
        [sys.executable, "-c", "from guard.cli import main; main()", "check", "-f", str(pod), "--offline"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # a decision either way, not a crash
    assert mark.exists() is loaded
