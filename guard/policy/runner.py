"""``guard policy test``: run a library's Rego tests and replay its samples, like ``opa test``.

1. Check the layout: every policy has ``<policy>_test.rego`` and allowed and denied samples.
2. Evaluate every ``test_*`` rule of every ``*_test.rego`` with the embedded engine: it must be true.
3. Replay the samples: ``samples/allowed/*.json`` must give no deny from their policy;
   ``samples/denied/*.json`` must give at least one, and when the file's name (after an optional
   ``<policy>--`` prefix) starts with one of the policy's rule names, a deny of that rule.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.errors import PolicyLibraryError
from guard.policy.embedded import new_regorus_engine, rust_error_text
from guard.policy.library import Policy, PolicyLibrary, layout_problems, load_library
from guard.untrusted import parse_json

_TEST_RULE = re.compile(r"^(test_\w+)\s*(?:if\b|:=|=|\{)", re.MULTILINE)
_RULE_NAME = re.compile(r'"rule":\s*"(\w+)"')


@dataclass(frozen=True)
class TestResult:
    name: str
    passed: bool
    detail: str | None = None


@dataclass(frozen=True)
class TestReport:
    root: Path
    results: tuple[TestResult, ...]
    seconds: float

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[TestResult, ...]:
        return tuple(r for r in self.results if not r.passed)


def _rego_tests(engine: Any, library: PolicyLibrary, pattern: re.Pattern[str] | None) -> list[TestResult]:
    results = []
    for module in library.tests:
        for rule in _TEST_RULE.findall(module.text):
            name = f"data.{module.package}.{rule}"
            if pattern and not pattern.search(name):
                continue
            try:
                value = engine.eval_rule(name)
            except RuntimeError as err:
                results.append(TestResult(name, False, f"error: {rust_error_text(err)}"))
                continue
            # regorus reports an undefined rule as None or as the string "undefined"
            shown = "undefined" if value is None or value == "undefined" else repr(value)
            detail = None if value is True else f"expected true, found {shown}"
            results.append(TestResult(name, value is True, detail))
    return results


def _sample(engine: Any, policy: Policy, path: Path, outcome: str) -> TestResult:
    name = f"{policy.name} {outcome}/{path.name}"
    try:
        document = parse_json(path.read_bytes(), "sample", error=PolicyLibraryError)
    except (OSError, PolicyLibraryError) as err:
        return TestResult(name, False, f"cannot read the sample as JSON: {err}")
    if not isinstance(document, dict):
        return TestResult(name, False, f"a sample must be a JSON object, found {type(document).__name__}")
    try:
        engine.set_input_json(json.dumps(document))
        denies = (
            json.loads(engine.eval_rule_as_json(f"data.{policy.package}.deny"))
            if "deny" in policy.rules
            else []
        )
    except RuntimeError as err:
        return TestResult(name, False, f"error: {rust_error_text(err)}")
    found = sorted({str(v.get("rule")) for v in denies if isinstance(v, dict)})
    if outcome == "allowed":
        return TestResult(name, not denies, None if not denies else f"expected no deny, found {found}")
    case = path.stem.split("--", 1)[1] if path.stem.startswith(f"{policy.file.path.stem}--") else path.stem
    expected = case.split("--", 1)[0]
    if expected in set(_RULE_NAME.findall(policy.file.text)):
        ok = expected in found
        return TestResult(
            name, ok, None if ok else f"expected a deny of rule {expected}, found {found or 'none'}"
        )
    return TestResult(name, bool(denies), None if denies else "expected at least one deny, found none")


def run_library_tests(root: Path | None = None, *, match: str | None = None) -> TestReport:
    """Run the checks above over the library at ``root`` (``None``: the shipped library)."""
    started = time.perf_counter()
    library = load_library(root)
    try:
        pattern = re.compile(match) if match else None
    except re.error as err:
        raise PolicyLibraryError(f"--run: not a valid regular expression: {err}") from err
    results = [TestResult(f"layout: {p}", False, None) for p in layout_problems(library)]
    engine = new_regorus_engine(library.modules(with_tests=True))
    results += _rego_tests(engine, library, pattern)
    for policy in library.policies:
        for outcome in ("allowed", "denied"):
            for path in policy.samples(outcome):
                result = _sample(engine, policy, path, outcome)
                if pattern is None or pattern.search(result.name):
                    results.append(result)
    return TestReport(library.root, tuple(results), time.perf_counter() - started)
