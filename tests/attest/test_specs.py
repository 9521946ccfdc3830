"""Every spec under attestations/ is a valid schema, and every example validates."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from guard.attest.extract import check_cyclonedx
from guard.attest.facts import ModelFacts
from guard.attest.specs import PREDICATES, load_spec_file

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = ROOT / "attestations"
SPECS = sorted(p.parent.relative_to(CANONICAL).as_posix() for p in CANONICAL.rglob("schema.json"))


def test_every_predicate_with_a_schema_ships_one() -> None:
    for spec in PREDICATES:
        if spec.schema is not None:
            assert spec.schema in SPECS
            assert load_spec_file(spec.schema)["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("spec", SPECS)
def test_example_validates(spec: str) -> None:
    schema = load_spec_file(spec)
    jsonschema.Draft202012Validator.check_schema(schema)
    example = load_spec_file(spec, "example.json")
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(example)
    assert (CANONICAL / spec / "README.md").is_file()


def test_facts_example_round_trips_through_the_typed_model() -> None:
    example = load_spec_file("model-facts/v1", "example.json")
    assert ModelFacts.model_validate(example).to_json() == example


def test_cyclonedx_example_is_valid_cyclonedx_16() -> None:
    check_cyclonedx(json.loads((CANONICAL / "cyclonedx" / "v1.6" / "example.json").read_text()))
