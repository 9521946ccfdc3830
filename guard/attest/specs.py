"""The predicates guard knows, and their schemas (shipped as package data, used at run time).

The spec files live in the repository's top-level ``attestations/<name>/<version>/``, read there
from a source checkout; the wheel carries them as ``guard/data/attestations/`` (``guard.shipped``).
A predicate is valid when it validates against its schema; the error names the JSON path of the
first bad field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from guard.errors import AttestationError
from guard.shipped import shipped_dir

if TYPE_CHECKING:
    import jsonschema

DATASET_PROVENANCE_TYPE = "https://guard.cnai.dev/dataset-provenance/v1"
SLSA_PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
CYCLONEDX_TYPE = "https://cyclonedx.org/bom"
CYCLONEDX_16_TYPE = "https://cyclonedx.org/bom/v1.6"
SPDX3_TYPE = "https://spdx.dev/Document/v3"
MODEL_FACTS_ID = "https://guard.cnai.dev/model-facts/v1"

FactsName = Literal["sbom", "spdx", "provenance", "datasets"]


@dataclass(frozen=True)
class PredicateSpec:
    """A predicate guard reads: its facts name, the types that mean it, its schema file."""

    name: FactsName
    predicate_types: tuple[str, ...]
    schema: str | None  # "<dir>/<version>" under attestations/, None: validated by a library


PREDICATES: tuple[PredicateSpec, ...] = (
    PredicateSpec("sbom", (CYCLONEDX_TYPE, CYCLONEDX_16_TYPE), None),
    PredicateSpec("provenance", (SLSA_PROVENANCE_TYPE,), "slsa-provenance/v1"),
    PredicateSpec("datasets", (DATASET_PROVENANCE_TYPE,), "dataset-provenance/v1"),
    PredicateSpec("spdx", (SPDX3_TYPE,), "spdx3-ai/v3"),
)

# The kinds whose absence ``guard facts`` reports as "missing".
EXPECTED_KINDS: tuple[FactsName, ...] = ("sbom", "provenance", "datasets")

SHORTCUT_TYPES: dict[str, str] = {
    "sbom": CYCLONEDX_TYPE,
    "provenance": SLSA_PROVENANCE_TYPE,
    "datasets": DATASET_PROVENANCE_TYPE,
}


def spec_for(predicate_type: str) -> PredicateSpec | None:
    for spec in PREDICATES:
        if predicate_type in spec.predicate_types:
            return spec
    return None


def spec_named(name: str) -> PredicateSpec:
    for spec in PREDICATES:
        if spec.name == name:
            return spec
    raise KeyError(name)


@cache
def load_spec_file(spec: str, filename: str = "schema.json") -> dict[str, Any]:
    """A spec file (``schema.json`` / ``example.json``) of ``attestations/<spec>`` from package data."""
    path = shipped_dir("attestations").joinpath(*spec.split("/"), filename)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # a broken installation, not bad user input
        raise RuntimeError(f"guard's packaged attestations/{spec}/{filename} is unreadable: {err}") from err
    if not isinstance(data, dict):
        raise RuntimeError(f"guard's packaged spec attestations/{spec}/{filename} is not a JSON object")
    return data


def json_path(parts: Any) -> str:
    """``$.datasets[0].licenses`` from a jsonschema error path."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@cache
def _validator(spec: str) -> jsonschema.Draft202012Validator:
    from guard._deferred import import_jsonschema  # noqa: PLC0415

    import_jsonschema()  # its IRI grammar built only if an IRI is checked (see guard._deferred)
    import jsonschema  # noqa: PLC0415 - ~80 ms: only where a predicate is validated

    return jsonschema.Draft202012Validator(load_spec_file(spec), format_checker=jsonschema.FormatChecker())


def validate_against(spec: str, document: Any, *, what: str) -> None:
    """Validate ``document`` against ``attestations/<spec>/schema.json``; AttestationError naming the
    path of the first (deepest-first, stable) error and what was expected."""
    schema = load_spec_file(spec)
    validator = _validator(spec)
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AttestationError(
            f"{what}: {json_path(first.absolute_path)}: {first.message}{more} "
            f"(schema {schema.get('$id', spec)})"
        )


def warm_up() -> None:
    """Build every predicate's validator and validate its shipped example (at the webhook's
    start-up: the first attestation of a process then pays for neither)."""
    for spec in PREDICATES:
        if spec.schema is not None:
            validate_against(spec.schema, load_spec_file(spec.schema, "example.json"), what=spec.name)
