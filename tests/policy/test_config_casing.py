"""One casing: guard's config keys are camelCase, as its JSON output and the chart's values.

snake_case keys are deprecated spellings: they load with a warning naming the path, the old and
the new key; both spellings of one key are an error; a typo in either spelling is refused; keys
that are data (names of authorities, products, regions, labels, policies) are never renamed.
"""

from __future__ import annotations

import copy
import logging
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.config import GuardConfig, load_config, parse_config
from guard.configmodel import ConfigModel, config_key
from guard.errors import ConfigError
from guard.policy.examples import CONFIG


def _models(cls: type[ConfigModel], seen: set[type[ConfigModel]] | None = None) -> set[type[ConfigModel]]:
    """Every config model reachable from ``cls``."""
    seen = set() if seen is None else seen
    if cls in seen:
        return seen
    seen.add(cls)

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, ConfigModel):
            _models(annotation, seen)
        for arg in typing.get_args(annotation):
            walk(arg)

    for field in cls.model_fields.values():
        walk(field.annotation)
    return seen


ALL_MODELS = sorted(_models(GuardConfig), key=lambda m: m.__name__)


def _snake(node: Any, data_keys: bool = False) -> Any:
    """``node`` with every camelCase key of guard's models written in snake_case (data untouched:
    the caller passes documents whose data keys hold no capitals)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key).replace("_c_o2e", "_co2e")
            out[key if data_keys else snake] = _snake(value, data_keys=key in DATA_MAPS)
        return out
    if isinstance(node, list):
        return [_snake(v) for v in node]
    return node


# mappings whose keys are names the user chose
DATA_MAPS = {"authorities", "gpuProducts", "migProfiles", "labels", "enforcement", "gridIntensity"}


@pytest.mark.parametrize(
    ("field", "key"),
    [
        ("ca_file", "caFile"),
        ("oci_layout", "ociLayout"),
        ("url", "url"),
        ("insecure_skip_tls_verify", "insecureSkipTlsVerify"),
        ("mig_slices_per_gpu", "migSlicesPerGpu"),
        ("memory_gib", "memoryGib"),
        ("g_per_kwh", "gPerKwh"),
        ("grid_intensity_g_per_kwh", "gridIntensityGPerKwh"),
        ("used_kg_co2e", "usedKgCO2e"),  # CO2e as in guard's JSON output (usedKgCO2e), not Co2E
        ("tag_ttl_seconds", "tagTtlSeconds"),
    ],
)
def test_the_key_of_a_field(field: str, key: str) -> None:
    assert config_key(field) == key


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_every_field_of_every_model_has_its_camel_case_key(model: type[ConfigModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.alias == config_key(name), f"{model.__name__}.{name}"
        assert field.alias[0].islower() and "_" not in field.alias


def test_camel_case_loads_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = parse_config(copy.deepcopy(CONFIG), "guard.yaml")
    assert caplog.text == ""
    assert config.unmatched_artifacts == "deny"
    assert config.tenants[0].gpu.max_per_container == 4
    assert config.tenants[0].carbon is not None and config.tenants[0].carbon.budget_kg_co2e == 5000
    assert config.rules[1].required_attestations == ("sbom", "datasets")


def test_snake_case_is_the_same_config_with_a_warning_per_key(caplog: pytest.LogCaptureFixture) -> None:
    snake = _snake(copy.deepcopy(CONFIG))
    assert "unmatched_artifacts" in snake and "node_pools" in snake["cluster"]
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        old = parse_config(snake, "guard.yaml")
    assert old == parse_config(copy.deepcopy(CONFIG))
    # the path as written, the old and the new spelling
    assert (
        "guard.yaml: cluster.node_pools.0.gpu_product is a deprecated spelling; write "
        "cluster.nodePools.0.gpuProduct (guard's config keys are camelCase)"
    ) in caplog.text
    assert "guard.yaml: unmatched_artifacts is a deprecated spelling; write unmatchedArtifacts" in caplog.text
    carbon = "tenants.0.carbon"
    assert f"{carbon}.budget_kg_co2e is a deprecated spelling; write {carbon}.budgetKgCO2e" in caplog.text
    assert "authorities.team-a-ci.identity_regex is a deprecated spelling" in caplog.text
    # single-word keys are the same in both casings: no warning for them
    assert "tenants.0.name " not in caplog.text and ".namespaces is" not in caplog.text


def test_snake_case_file_loads_with_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text(
        "admission:\n  registry: {ca_file: ca.pem}\n"
        "registries: [{host: r.example, mirror: {oci_layout: m}}]\n"
    )
    (tmp_path / "m").mkdir()
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = load_config(path)
    assert config.admission.registry.ca_file == tmp_path / "ca.pem"  # still relative to the file
    mirror = config.registries[0].mirror
    assert mirror is not None and mirror.oci_layout == tmp_path / "m"
    registry = "admission.registry"
    assert f"{path}: {registry}.ca_file is a deprecated spelling; write {registry}.caFile" in caplog.text
    assert "registries.0.mirror.oci_layout is a deprecated spelling; write registries.0.mirror.ociLayout" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("data", "where", "key", "found"),
    [
        (
            {"unmatchedArtifacts": "deny", "unmatched_artifacts": "deny"},
            "(root)",
            "unmatchedArtifacts",
            "unmatchedArtifacts and unmatched_artifacts",
        ),
        (
            {"admission": {"registry": {"ca_file": "a", "caFile": "b"}}},
            "admission.registry",
            "caFile",
            "ca_file and caFile",
        ),
        (
            {"cluster": {"nodePools": [{"name": "p", "labels": {}, "gpuProduct": "x", "gpu_product": "x"}]}},
            "cluster.nodePools.0",
            "gpuProduct",
            "gpuProduct and gpu_product",
        ),
        (
            {"cluster": {"gpuProducts": {"g": {"memoryGib": 1, "memory_gib": 1, "boardPowerW": 1}}}},
            "cluster.gpuProducts.g",
            "memoryGib",
            "memoryGib and memory_gib",
        ),
        (
            {"policy": {"engine": {"kind": "opa", "url": "u", "timeoutSeconds": 1, "timeout_seconds": 2}}},
            "policy.engine",
            "timeoutSeconds",
            "timeoutSeconds and timeout_seconds",
        ),
    ],
)
def test_both_spellings_of_one_key_are_an_error(
    data: dict[str, Any], where: str, key: str, found: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "guard.yaml")
    message = str(info.value)
    assert message.startswith(f"guard.yaml: {where}: expected the key {key} once, found {found}")
    assert message.endswith(f"give {key} only")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"admission": {"registry": {"caFiel": "x"}}}, "admission.registry.caFiel"),
        ({"admission": {"registry": {"ca_fiel": "x"}}}, "admission.registry.ca_fiel"),
        ({"admission": {"registry": {"CaFile": "x"}}}, "admission.registry.CaFile"),
        ({"admission": {"registry": {"ca-file": "x"}}}, "admission.registry.ca-file"),
        ({"unmatchedartifacts": "deny"}, "unmatchedartifacts"),
        (
            {"tenants": [{"name": "a", "namespaces": ["a"], "gpu": {"max_per_gpu": 1}}]},
            "tenants.0.gpu.max_per_gpu",
        ),
    ],
)
def test_a_typo_is_refused_in_either_spelling(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=rf"guard.yaml: {path}: Extra inputs are not permitted"):
        parse_config(data, "guard.yaml")


def test_keys_that_are_data_are_never_renamed(caplog: pytest.LogCaptureFixture) -> None:
    data = {
        "authorities": {"release_key": {"kind": "key", "key": "k.pem"}},
        "rules": [{"name": "r", "artifacts": ["a/**"], "authorities": ["release_key"]}],
        "cluster": {
            "gpuProducts": {"my_gpu_80gb": {"memoryGib": 80, "boardPowerW": 300}},
            "migProfiles": {"1g.10gb": 10, "custom_profile": 5},
            "nodePools": [
                {"name": "pool_a", "labels": {"node_pool": "a", "topology.kubernetes.io/zone": "z"}}
            ],
        },
        "policy": {"enforcement": {"supply_chain.mutable_tags": "warn", "tenancy.node_pools": "dryrun"}},
        "energy": {"gridIntensity": {"on_prem_1": {"gPerKwh": 300, "dataset": "bill", "year": 2025}}},
    }
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        config = parse_config(data, "guard.yaml")
    assert caplog.text == ""
    assert list(config.authorities) == ["release_key"]
    assert list(config.cluster.gpu_products) == ["my_gpu_80gb"]
    assert "custom_profile" in config.cluster.mig_profiles
    assert config.cluster.node_pools[0].labels == {"node_pool": "a", "topology.kubernetes.io/zone": "z"}
    assert config.policy.enforcement_for("supply_chain.mutable_tags") == "warn"
    assert config.policy.enforcement_for("tenancy.node_pools") == "dryrun"
    assert list(config.energy.grid_intensity) == ["on_prem_1"]
    # and the same data under deprecated snake_case keys is kept as well
    with caplog.at_level(logging.WARNING, logger="guard.config"):
        old = parse_config(_snake(data), "guard.yaml")
    assert old == config
    new = "cluster.gpuProducts.my_gpu_80gb.memoryGib"
    assert f"cluster.gpu_products.my_gpu_80gb.memory_gib is a deprecated spelling; write {new}" in caplog.text


def test_the_file_spelling_round_trips() -> None:
    # what guard would write (by_alias) is what it reads, with every default shown
    config = parse_config(copy.deepcopy(CONFIG))
    written = config.model_dump(mode="json", by_alias=True)
    assert "unmatchedArtifacts" in written and "gpuProducts" in written["cluster"]
    assert parse_config(yaml.safe_load(yaml.safe_dump(written))) == config
    # the Python attributes (and the trust-config hash built from model_dump) keep the field names
    assert "unmatched_artifacts" in config.model_dump()


def test_the_json_schema_has_camel_case_keys_and_the_deprecated_ones_marked() -> None:
    schema = GuardConfig.model_json_schema()
    registry = schema["$defs"]["RegistrySettings"]["properties"]
    assert "caFile" in registry and "deprecated" not in registry["caFile"]
    assert registry["ca_file"]["deprecated"] is True
    assert registry["ca_file"]["description"] == "Deprecated: write caFile."
    key = schema["$defs"]["KeyAuthority"]
    assert key["properties"]["public_key"]["deprecated"] is True
    assert {"oneOf": [{"required": ["key"]}, {"required": ["public_key"]}]} in key["allOf"]
