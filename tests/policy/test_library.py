"""The Rego library: every policy tested and sampled, `guard policy test` over all of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from guard.cli import run
from guard.errors import PolicyLibraryError
from guard.policy.examples import example_input, write_fixtures, write_samples
from guard.policy.library import PolicyLibrary, default_library_dir, layout_problems, load_library
from guard.policy.runner import run_library_tests

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = {"supply_chain", "provenance", "gpu", "tenancy", "carbon"}


def test_whole_library_passes_guard_policy_test(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "test", str(default_library_dir())]) == 0
    out = capsys.readouterr().out
    assert " 0 failed" in out


def test_every_policy_has_tests_and_samples(library: PolicyLibrary) -> None:
    assert layout_problems(library) == []
    assert {p.name.split(".")[0] for p in library.policies} == BUNDLES
    for policy in library.policies:
        assert policy.test_file.is_file()
        assert policy.samples("allowed") and policy.samples("denied"), policy.name


def test_runner_counts_rego_tests_and_samples(library: PolicyLibrary) -> None:
    report = run_library_tests()
    names = [r.name for r in report.results]
    assert not report.failed
    assert any(n.startswith("data.guard.gpu.fit_test.test_denied_70b") for n in names)
    samples = sum(len(p.samples("allowed")) + len(p.samples("denied")) for p in library.policies)
    assert sum(" allowed/" in n or " denied/" in n for n in names) == samples


def test_samples_are_up_to_date(tmp_path: Path) -> None:
    """The committed samples are what guard.policy.examples generates (run it after editing)."""
    write_samples(tmp_path)
    write_fixtures(tmp_path)
    for generated in tmp_path.rglob("*.*"):
        committed = default_library_dir() / generated.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} missing: run python -m guard.policy.examples policies"
        assert committed.read_text() == generated.read_text(), f"{committed} is stale"


def _validator() -> jsonschema.Draft202012Validator:
    facts = json.loads((ROOT / "attestations/model-facts/v1/schema.json").read_text())
    schema = json.loads((default_library_dir() / "input.schema.json").read_text())
    registry = Registry().with_resource(facts["$id"], Resource.from_contents(facts))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_samples_follow_the_input_schema() -> None:
    validator = _validator()
    samples = sorted(default_library_dir().rglob("samples/*/*.json"))
    assert len(samples) > 40
    for path in samples:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(json.loads(path.read_text()))]
        assert not errors, f"{path}: {errors[:3]}"


def test_schema_refuses_a_malformed_input() -> None:
    document = example_input()
    document["workload"]["containers"][0]["gpu"]["count"] = "two"
    del document["tenant"]
    messages = [e.message for e in _validator().iter_errors(document)]
    assert any("'tenant' is a required property" in m for m in messages)
    assert any("'two' is not of type 'integer'" in m for m in messages)


def _copy_library(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_library_dir(), target)
    return target


def test_policy_without_samples_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_library(tmp_path)
    for sample in (root / "gpu/samples/denied").glob("fit--*.json"):
        sample.unlink()
    (root / "carbon/budget_test.rego").unlink()
    assert run(["policy", "test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL layout: gpu.fit: no denied samples" in out
    assert "FAIL layout: carbon.budget: missing test file" in out
    assert out.count("missing test file") == 1  # the reason is not repeated on its FAIL line


def test_policy_test_takes_the_library_as_policy_eval_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_library(tmp_path)
    assert run(["policy", "test", "--policies", str(root), "--run", "gpu"]) == 0
    assert f"{root}: " in capsys.readouterr().out
    assert run(["policy", "test", str(root), "-p", str(tmp_path)]) == 2
    assert "give the library once" in capsys.readouterr().err


def test_a_bundle_directory_given_as_the_library_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "test", str(default_library_dir() / "gpu")]) == 2
    assert "give the library root, the directory of the bundles" in capsys.readouterr().err


def test_sample_that_does_not_deny_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_library(tmp_path)
    allowed = (root / "gpu/samples/allowed/fit--8b-on-h100.json").read_text()
    (root / "gpu/samples/denied/fit--model_exceeds_gpu_memory.json").write_text(allowed)
    assert run(["policy", "test", str(root)]) == 1
    out = capsys.readouterr().out
    expected = "expected a deny of rule model_exceeds_gpu_memory"
    assert f"FAIL gpu.fit denied/fit--model_exceeds_gpu_memory.json: {expected}" in out
    assert "1 failed" in out


def test_failing_rego_test_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_library(tmp_path)
    policy = root / "gpu/quota.rego"
    policy.write_text(policy.read_text().replace("c.gpu.count > cap", "c.gpu.count > cap + 100"))
    assert run(["policy", "test", str(root), "--run", "quota"]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL data.guard.gpu.quota_test.test_denied_gpus_per_container: expected true, found undefined" in out
    )


def test_syntax_error_is_a_library_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_library(tmp_path)
    (root / "gpu/mig.rego").write_text("package guard.gpu.mig\n\ndeny contains v if {\n")
    assert run(["policy", "test", str(root)]) == 2
    assert "mig.rego" in capsys.readouterr().err


def test_package_must_match_path(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    path = root / "gpu/mig.rego"
    path.write_text(path.read_text().replace("package guard.gpu.mig", "package guard.gpu.other"))
    with pytest.raises(PolicyLibraryError, match=r"expected package guard\.gpu\.mig, found guard\.gpu\.oth"):
        load_library(root)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyLibraryError, match="does not exist"):
        load_library(tmp_path / "nope")
