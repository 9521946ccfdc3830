"""Every guard config example in docs/ loads, in camelCase, and round-trips.

A YAML block is a config example when its top-level keys are GuardConfig's (in either spelling,
so a stale snake_case example is caught, not skipped), or when it is chart values with a
``config`` section. Examples are fragments: they are validated field by field (the pydantic
models), not for cross references such as a rule naming an authority defined elsewhere.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.config import GuardConfig
from guard.configmodel import camel_document, old_spellings

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)
_TOP = set(GuardConfig.model_fields) | {f.alias for f in GuardConfig.model_fields.values() if f.alias}
_TOP |= {old for olds in old_spellings(GuardConfig).values() for old in olds}
# keys only the chart's values have (a values document's `config` is the guard config)
_CHART_ONLY = {"trustFiles", "registry", "webhook", "image", "mode", "energyUsage", "selfVerify", "mirrors"}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if page.parent.name == "reference" and page.name == "chart-values.md":
            continue  # values.yaml as shipped: its config is checked by the chart tests
        for n, match in enumerate(_BLOCK.finditer(page.read_text(encoding="utf-8"))):
            doc = yaml.safe_load(match.group(1))
            if not isinstance(doc, dict) or not doc:
                continue
            where = f"{page.relative_to(DOCS)}#{n}"
            if isinstance(doc.get("config"), dict) and set(doc) & _CHART_ONLY:
                found.append((where, doc["config"]))
            elif set(doc) <= _TOP:
                found.append((where, doc))
    return found


EXAMPLES = _examples()


def test_the_docs_have_config_examples() -> None:
    pages = {where.split("#")[0] for where, _ in EXAMPLES}
    assert len(EXAMPLES) >= 8, EXAMPLES
    expected = {"guides/policies.md", "guides/helm-chart.md", "guides/energy.md", "concepts/admission.md"}
    assert expected <= pages


@pytest.mark.parametrize(("where", "example"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_config_example_loads_in_camel_case_and_round_trips(
    where: str, example: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = GuardConfig.model_validate(camel_document(example, GuardConfig, where))
    assert caplog.text == "", f"{where} uses deprecated spellings: {caplog.text}"
    written = config.model_dump(mode="json", by_alias=True)
    assert GuardConfig.model_validate(camel_document(written, GuardConfig, where)) == config
