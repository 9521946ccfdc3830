"""guard._deferred: jsonschema imported by guard does not build rfc3987_syntax's parsers, the ``iri``
/ ``iri-reference`` formats are still checked exactly as the library checks them, and importing
guard installs no import hook."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rfc3987_syntax")

VALUES = [
    "https://example.com/model",
    "https://example.com/ä/ü?q=1#x",
    "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
    "http://exa mple.com",
    "/relative/path",
    "a b",
    "%zz",
    "",
    "http://[::1]:8080/",
]

_CHECK = """
import json, sys
{prelude}
import jsonschema
checker = jsonschema.FormatChecker()
before = "rfc3987_syntax.syntax_helpers" in sys.modules
found = {{f: [checker.conforms(v, f) for v in json.loads(sys.argv[1])] for f in ("iri", "iri-reference")}}
real = type(sys.modules["rfc3987_syntax"]).__name__
print(json.dumps({{"built_at_import": before, "found": found, "real": real}}))
"""


def _check(prelude: str) -> dict[str, object]:
    code = _CHECK.format(prelude=prelude)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(VALUES)], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_the_grammar_is_built_on_first_use_and_checks_the_same() -> None:
    deferred = _check("from guard._deferred import import_jsonschema; import_jsonschema()")
    plain = _check("")
    assert deferred["built_at_import"] is False
    assert plain["built_at_import"] is True
    assert deferred["found"] == plain["found"]
    assert deferred["real"] == plain["real"] == "module"  # the stand-in is gone after the import
    found = deferred["found"]
    assert isinstance(found, dict)
    assert found["iri"][0] is True and found["iri"][3] is False  # the checks do run


def test_the_webhook_engine_builds_without_the_grammar() -> None:
    code = (
        "import asyncio, sys\n"
        "from guard.admission.wiring import build_engine\n"
        "from guard.config import GuardConfig\n"
        "asyncio.run(build_engine(GuardConfig()))\n"
        "print('rfc3987_syntax.syntax_helpers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_importing_guard_adds_no_import_hook() -> None:
    code = (
        "import sys\nhooks = list(sys.meta_path)\n"
        "import guard, guard.cli, guard.attest.specs, guard.attest.cyclonedx_schema\n"
        "guard.attest.specs._validator('slsa-provenance/v1')\n"
        "guard.attest.cyclonedx_schema.warm_up()\n"
        "ours = [h for h in sys.meta_path if h not in hooks and type(h).__module__.startswith('guard')]\n"
        "print(len(ours), 'rfc3987_syntax.syntax_helpers' in sys.modules)"
    )  # (a library may add its own: six does, imported by a format checker)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False"]  # guard's validators built, without the grammar
