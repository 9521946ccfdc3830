"""guard._deferred: jsonschema imported by guard does not build rfc3987_syntax's parsers, compile
rfc3986_validator's regex or import arrow; the ``iri``, ``uri`` and ``duration`` formats are still
checked exactly as the library checks them, and importing guard installs no import hook."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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

# the last two take isoduration's datetime form, the one that calls arrow (and catches its error)
DURATIONS = [
    "P1D",
    "PT1H30M",
    "P1Y2M3DT4H",
    "P1W",
    "bogus",
    "P",
    "1D",
    "PT",
    "",
    "P0003-06-04T12:30:05",
    "P0003-13-04T12:30:05",
]

_CHECK = """
import json, sys
{prelude}
import jsonschema
checker = jsonschema.FormatChecker()
before = {marker!r} in sys.modules
values = json.loads(sys.argv[1])
found = {{f: [checker.conforms(v, f) for v in values] for f in {formats!r}}}
real = type(sys.modules[{module!r}]).__name__
print(json.dumps({{"built_at_import": before, "found": found, "real": real}}))
"""


def _check(prelude: str, values: list[str], marker: str, formats: tuple[str, ...]) -> dict[str, object]:
    code = _CHECK.format(prelude=prelude, marker=marker, formats=formats, module=marker.split(".")[0])
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(values)], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


@pytest.mark.parametrize(
    ("marker", "formats", "values", "valid", "invalid"),
    [
        # rfc3987_syntax builds 39 Earley parsers at import (1.3-2.5 s)
        ("rfc3987_syntax.syntax_helpers", ("iri", "iri-reference"), VALUES, 0, 3),
        # rfc3986_validator compiles one large regex (17 ms)
        ("rfc3986_validator", ("uri", "uri-reference"), VALUES, 0, 3),
        # isoduration's parser imports arrow (35-45 ms); its exception is still the one caught
        ("arrow", ("duration",), DURATIONS, 0, 4),
    ],
)
def test_a_deferred_module_loads_on_first_use_and_checks_the_same(
    marker: str, formats: tuple[str, ...], values: list[str], valid: int, invalid: int
) -> None:
    pytest.importorskip(marker.split(".")[0])
    deferred = _check(
        "from guard._deferred import import_jsonschema; import_jsonschema()", values, marker, formats
    )
    plain = _check("", values, marker, formats)
    assert deferred["built_at_import"] is False
    assert plain["built_at_import"] is True
    assert deferred["found"] == plain["found"]
    assert deferred["real"] == plain["real"] == "module"  # the stand-in is gone after the import
    found = deferred["found"]
    assert isinstance(found, dict)
    assert found[formats[0]][valid] is True and found[formats[0]][invalid] is False  # the checks do run


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
