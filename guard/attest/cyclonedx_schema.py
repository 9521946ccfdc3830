"""CycloneDX 1.6 JSON schema validation, without the rest of the CycloneDX library.

What the verifying path (``guard facts``, the webhook: ``guard.attest.extract``) needs of
cyclonedx-python-lib is its strict 1.6 schema validator; importing the library's object model
too (``guard.attest.sbom``, for ``guard sbom``) costs ~0.3 s of CPU more, so it lives apart.
``warm_up()`` builds the validator and validates a minimal BOM, at the webhook's start-up.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from guard.attest.specs import json_path
from guard.errors import UsageError

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

MINIMAL_BOM = '{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}'


@cache
def _validator() -> JsonStrictValidator:
    """One validator per process: building it (schema + referenced schemas) costs ~200 ms."""
    from guard._deferred import import_jsonschema  # noqa: PLC0415

    import_jsonschema()  # its IRI grammar built only if an IRI is checked (see guard._deferred)
    from cyclonedx.schema import SchemaVersion  # noqa: PLC0415 - jsonschema and the schemas: ~80 ms
    from cyclonedx.validation.json import JsonStrictValidator  # noqa: PLC0415

    return JsonStrictValidator(SchemaVersion.V1_6)


_IRI_BAD = re.compile(r'[\x00-\x20<>"{}|\\^`\x7f]|%(?![0-9A-Fa-f]{2})')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _iri_reference(value: object) -> bool:
    return not isinstance(value, str) or _IRI_BAD.search(value) is None


def _iri(value: object) -> bool:
    return not isinstance(value, str) or (_iri_reference(value) and _SCHEME.match(value) is not None)


@cache
def _fast_validator() -> Any:
    """The library's 1.6 schema validator with linear-time ``iri`` / ``iri-reference`` checks.

    The library checks those formats with an Earley parser (rfc3987-syntax): ~220 ms per URL
    measured here, cubic in the length; on the verifying path (``guard facts``, the webhook) a
    BOM full of long URLs would be a denial of service. Everything else is the library's
    validator unchanged; ``guard sbom`` validates what it writes with the library's own."""
    from jsonschema import Draft7Validator, FormatChecker  # noqa: PLC0415

    base = _validator()._validator  # the library's jsonschema validator (schema + registry)
    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft7Validator.FORMAT_CHECKER.checkers)
    checker.checks("iri-reference")(_iri_reference)
    checker.checks("iri")(_iri)
    return base.evolve(format_checker=checker)


def _raise_first(error: Any, source: str) -> None:
    path = json_path(getattr(error, "absolute_path", ()))
    message = getattr(error, "message", str(error))
    raise UsageError(f"{source}: not valid CycloneDX 1.6: {path}: {message}")


def validate_cyclonedx(text: str, *, source: str, fast: bool = False) -> None:
    """Strict CycloneDX 1.6 JSON schema validation (the library's); UsageError naming the path.
    ``fast``: the same schema with linear-time IRI format checks (see ``_fast_validator``)."""
    if fast:
        error = next(iter(_fast_validator().iter_errors(json.loads(text))), None)
        if error is not None:
            _raise_first(error, source)
        return
    found = _validator().validate_str(text)
    if found is not None:
        _raise_first(found.data, source)


def warm_up() -> None:
    """Build the verifying path's validator and run it once (the schema's references resolve on
    first use), so the first SBOM of a process is not the one to pay for it."""
    validate_cyclonedx(MINIMAL_BOM, source="guard's minimal BOM", fast=True)
