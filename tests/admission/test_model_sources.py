"""Model sources outside image fields: extraction (guard.admission.sources), the allow-list
(guard.policy.sources) and the whole path through the real policy library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.admission.kinds import KindTable
from guard.admission.pipeline import AdmissionEngine
from guard.admission.policies import LibraryPolicyEvaluator
from guard.admission.references import extract_references
from guard.admission.response import build_response
from guard.admission.review import AdmissionReview
from guard.admission.wiring import ConfigTrustRules
from guard.config import GuardConfig, parse_config
from guard.policy.decision import Decision
from guard.policy.engine import make_engine
from guard.policy.sources import allowed_by, source_parts
from guard.testing.admission import FakeRules, FakeVerifier, admission_review, digest_of

SIGNED = "registry.local/models/llama@" + digest_of("registry.local/models/llama:v1")
POD = KindTable().lookup("", "Pod")


def _sources(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    assert POD is not None
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    return {
        r.reference: [o.location for o in r.occurrences]
        for r in extract_references(obj, POD, ())
        if not r.occurrences[0].location.endswith(".image")
    }


def _server(**fields: Any) -> dict[str, Any]:
    context = {"allowPrivilegeEscalation": False, "runAsNonRoot": True}
    return {"name": "server", "image": SIGNED, "securityContext": context, **fields}


# --- extraction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "found"),
    [
        (["--model=s3://m/llama"], "s3://m/llama"),
        (["--model-id", "bigscience/bloom"], "hf://bigscience/bloom"),  # TGI
        (["--model-path", "Qwen/Qwen2-7B"], "hf://Qwen/Qwen2-7B"),  # SGLang
        (["serve", "gs://b/m"], None),  # `serve` without `vllm` before it is no vLLM command
        (["--served-model-name", "x", "--tokenizer", "t"], None),  # names, not sources
        (["--model", "$(UNKNOWN)"], "unresolved://$(UNKNOWN)"),  # the kubelet leaves it as is
        (["--model-pa", "Qwen/Qwen2-7B"], "hf://Qwen/Qwen2-7B"),  # argparse takes abbreviations
        (["--model_path=s3://m/q"], "s3://m/q"),
        (["--model-impl", "transformers"], None),  # another flag
        (["--model_id={{.Name}}"], "unresolved://{{.Name}}"),  # a ServingRuntime template
        (["--model-id", "42"], None),  # a number is no Hub repository
        # Triton, TorchServe and TensorFlow Serving: the model repository / store / base path
        (["--model-repository=s3://bucket/models"], "s3://bucket/models"),  # Triton
        (["--model-store", "gs://b/mars"], "gs://b/mars"),  # Triton's older spelling, TorchServe
        (["--model_base_path=s3://b/tf"], "s3://b/tf"),  # TensorFlow Serving
        (["--model-control-mode", "explicit", "--model-load-thread-count", "4"], None),  # settings
        # llama.cpp's server: a GGUF from a URL or a Hub repository (with its quantization)
        (["--model-url", "https://evil.example/m.gguf"], "https://evil.example/m.gguf"),
        (["-hf", "ggml-org/gemma-3-1b-it-GGUF:Q4_K_M"], "hf://ggml-org/gemma-3-1b-it-GGUF:Q4_K_M"),
        (["--hf-repo=org/m-GGUF"], "hf://org/m-GGUF"),
        (["-hfr", "org/m-GGUF", "--hf-file", "m.gguf"], "hf://org/m-GGUF"),
        # speculative decoding: a draft model's weights, loaded beside the model
        (
            ["--speculative-config", '{"model": "org/draft", "num_speculative_tokens": 5}'],
            "hf://org/draft",
        ),
        (['--speculative_config={"method": "eagle3", "model": "s3://b/eagle"}'], "s3://b/eagle"),
        (["--speculative-config.model", "org/draft"], "hf://org/draft"),
        (["--speculative-config.num_speculative_tokens", "5"], None),  # another key
        (["--speculative-config", '{"method": "ngram", "num_speculative_tokens": 5}'], None),  # no draft
        (["--speculative-config", "{not-json"], "unresolved://{not-json"),
        (["--speculative-config", '{"model": 7}'], 'unresolved://{"model": 7}'),
        (["--speculative-conf", '{"model": "org/draft"}'], "hf://org/draft"),  # an abbreviation
        (["--speculative-model", "org/draft", "--num-speculative-tokens", "5"], "hf://org/draft"),
        (["--speculative-draft-model-path=org/draft"], "hf://org/draft"),  # SGLang
        (["--speculative-num-steps", "3", "--speculative-max-model-len", "2048"], None),  # settings
    ],
)
def test_model_arguments(args: list[str], found: str | None) -> None:
    sources = _sources({"containers": [_server(args=args)]})
    assert list(sources) == ([found] if found else [])


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", "hf://meta-llama/Llama-3.1-8B-Instruct"),
        ("ngc://nim/meta/llama-3.3-70b-instruct:hf", "ngc://nim/meta/llama-3.3-70b-instruct:hf"),
        ("s3://my-bucket/my-org/my-model", "s3://my-bucket/my-org/my-model"),
        ("/weights/llama", "pvc://weights/llama"),  # a local directory: the volume mounted there
    ],
)
def test_a_nim_model_path_is_a_model_source(value: str, found: str) -> None:
    container = _server(
        env=[{"name": "NIM_MODEL_PATH", "value": value}],
        volumeMounts=[{"name": "w", "mountPath": "/weights"}],
    )
    spec = {
        "containers": [container],
        "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "weights"}}],
    }
    assert list(_sources(spec)) == [found]


@pytest.mark.parametrize(
    ("args", "env", "found"),
    [
        # vLLM: name=path pairs (nargs "+") or JSON objects, each an adapter's weights
        (
            ["--enable-lora", "--lora-modules", "sql=org/sql-lora", "chat=/adapters/chat", "--port", "80"],
            [],
            ["hf://org/sql-lora", "pvc://loras/chat"],
        ),
        (
            ["--lora-modules", '{"name": "sql", "path": "s3://b/sql", "base_model_name": "m"}'],
            [],
            ["s3://b/sql"],
        ),
        (["--lora-modules=sql=org/sql-lora"], [], ["hf://org/sql-lora"]),
        (["--lora-paths", "a=org/a", "org/b"], [], ["hf://org/a", "hf://org/b"]),  # SGLang
        (["--lora-adapters", "org/a,b=org/b"], [], ["hf://org/a", "hf://org/b"]),  # TGI
        ([], [{"name": "LORA_ADAPTERS", "value": "org/a, org/b"}], ["hf://org/a", "hf://org/b"]),  # TGI
        (["--lora_modules", "a=org/a", "--lora-mod=b=org/b"], [], ["hf://org/a", "hf://org/b"]),
        (["--max-lora-rank", "64", "--lora-dtype", "auto"], [], []),  # settings, not sources
    ],
)
def test_lora_adapters_are_model_sources(
    args: list[str], env: list[dict[str, str]], found: list[str]
) -> None:
    container = _server(args=args, env=env, volumeMounts=[{"name": "l", "mountPath": "/adapters"}])
    spec = {
        "containers": [container],
        "volumes": [{"name": "l", "persistentVolumeClaim": {"claimName": "loras"}}],
    }
    assert list(_sources(spec)) == found


def test_the_first_argument_of_a_vllm_image_is_its_model() -> None:
    container = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.10.0",
        "args": ["mistralai/Mistral-7B", "--port", "8000"],
    }
    assert _sources({"containers": [container]}) == {
        "hf://mistralai/Mistral-7B": ["spec.containers[0].args[0]"]
    }
    container["command"] = ["python3", "-m", "my.server"]  # not vLLM's entrypoint any more
    assert _sources({"containers": [container]}) == {}


def test_a_later_env_entry_of_the_same_name_wins() -> None:
    container = _server(
        args=["--model", "$(M)"],
        env=[
            {"name": "M", "value": "hf://allowed/model"},
            {"name": "M", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        ],
    )
    assert list(_sources({"containers": [container]})) == ["unresolved://$(M)"]


def test_path_spellings_and_sub_path_expressions() -> None:
    spec = {
        "containers": [
            _server(
                args=["--model", "//weights/a", "--model-dir", "/per-pod/b"],
                volumeMounts=[
                    {"name": "w", "mountPath": "/weights"},
                    {"name": "w", "mountPath": "/per-pod", "subPathExpr": "$(POD_NAME)"},
                ],
            )
        ],
        "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "llm"}}],
    }
    assert list(_sources(spec)) == ["pvc://llm/a", "unresolved://pvc://llm/$(POD_NAME)/b"]


def test_vllm_serve_in_a_shell_string_with_variables() -> None:
    container = _server(
        command=["/bin/sh", "-c", 'vllm serve "$MODEL" --port 8000 && echo done'],
        env=[{"name": "MODEL", "value": "meta-llama/Llama-3-8B"}],
    )
    assert _sources({"containers": [container]}) == {
        "hf://meta-llama/Llama-3-8B": ["spec.containers[0].command[2]"]
    }


def test_a_variable_from_a_secret_is_an_unresolvable_source() -> None:
    container = _server(
        args=["--model", "$(M)"],
        env=[{"name": "M", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    )
    assert list(_sources({"containers": [container]})) == ["unresolved://$(M)"]


def test_storage_initializer_pairs_and_paths_into_volumes() -> None:
    spec = {
        "initContainers": [
            {
                "name": "init",
                "image": "kserve/storage-initializer:v0.15.0",
                "args": ["s3://a/base", "/mnt/models/base", "hf://org/lora", "/mnt/models/lora"],
            }
        ],
        "containers": [
            _server(
                args=["--model", "/host/models/x", "--model-dir", "/nfs/y", "--model_path", "/opt/in-image"],
                volumeMounts=[
                    {"name": "host", "mountPath": "/host", "subPath": "cache"},
                    {"name": "share", "mountPath": "/nfs/"},
                ],
            )
        ],
        "volumes": [
            {"name": "host", "hostPath": {"path": "/var/lib/models/"}},
            {"name": "share", "nfs": {"server": "10.0.0.2", "path": "/export"}},
        ],
    }
    assert _sources(spec) == {
        "s3://a/base": ["spec.initContainers[0].args[0]"],
        "hf://org/lora": ["spec.initContainers[0].args[2]"],
        "hostpath:///var/lib/models/cache/models/x": ["spec.containers[0].args[1]"],
        "nfs://10.0.0.2/export/y": ["spec.containers[0].args[3]"],
    }


def test_a_model_csi_volume_without_model_ref_is_never_nothing() -> None:
    spec = {
        "containers": [_server()],
        "volumes": [{"name": "m", "csi": {"driver": "model.csi.modelpack.org", "volumeAttributes": {}}}],
    }
    assert list(_sources(spec)) == ["unresolved://csi/model.csi.modelpack.org/m"]


def test_oci_schemes_of_kserve_and_kitops_are_verified_as_oci() -> None:
    kind = KindTable().lookup("serving.kserve.io", "InferenceService")
    assert kind is not None
    for scheme in ("oci", "oci+native", "OCI+FETCH", "kit"):
        obj = {"spec": {"predictor": {"model": {"storageUri": f"{scheme}://registry.local/models/llama:v1"}}}}
        (ref,) = extract_references(obj, kind, ())
        assert (ref.scheme, ref.reference) == ("oci", "registry.local/models/llama:v1")


# --- the allow-list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "prefixes", "allowed"),
    [
        ("s3://models/llama", ["s3://models"], "s3://models"),
        ("s3://models-evil/llama", ["s3://models"], None),  # a boundary, not a string prefix
        ("S3://models/llama", ["s3://models/"], "s3://models/"),  # schemes ignore case
        ("hf://org/model:" + "a" * 40, ["hf://org/model"], "hf://org/model"),
        ("hf://anyone/model", ["hf://"], "hf://"),  # a whole scheme
        ("pvc://models/ok/../secret", ["pvc://models/ok/"], None),
        ("pvc://models/ok/%2e%2e/secret", ["pvc://models/ok/"], None),
        ("pvc://models/ok/%252e%252e/secret", ["pvc://models/ok/"], None),
        ("pvc://models/ok\\..\\secret", ["pvc://models/ok"], None),
        ("kserve-storage://key;bucket=evil/m", ["kserve-storage://key/"], None),
        ("s3://models/llama", [], None),
        ("registry.local/models/llama:v1", ["registry.local/"], None),  # OCI: verified, never listed
        # a ":" after a host is a port or userinfo, never a revision: the host is another one
        ("https://models.example.com:x@evil.example/llama.bin", ["https://models.example.com"], None),
        ("https://models.example.com:8443/llama.bin", ["https://models.example.com"], None),
        ("s3://models:x@evil.example/llama", ["s3://models"], None),
        (
            "https://models.example.com/llama.bin",
            ["https://models.example.com"],
            "https://models.example.com",
        ),
    ],
)
def test_allowed_model_sources(uri: str, prefixes: list[str], allowed: str | None) -> None:
    assert allowed_by(uri, prefixes) == allowed


def test_source_parts_name_a_revision_as_tag() -> None:
    parts = source_parts("hf://meta-llama/Llama-3:main")
    assert (parts.name, parts.registry, parts.repository, parts.tag) == (
        "hf://meta-llama/Llama-3",
        "hf://meta-llama",
        "Llama-3",
        "main",
    )


# --- through the real policy library ----------------------------------------------------------


class _Recording:
    """The configured engine, keeping every policy input it was given."""

    def __init__(self, config: GuardConfig) -> None:
        self.inner = make_engine(config.policy)
        self.inputs: list[dict[str, Any]] = []

    async def evaluate(self, document: dict[str, Any]) -> Decision:
        self.inputs.append(document)
        return await self.inner.evaluate(document)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _config(**extra: Any) -> GuardConfig:
    return parse_config(
        {
            "authorities": {"ci": {"kind": "key", "key": "/nonexistent/ci.pub"}},
            "rules": [{"name": "models", "artifacts": ["registry.local/models/**"], "authorities": ["ci"]}],
            **extra,
        }
    )


async def _review(config: GuardConfig, obj: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    verifier = FakeVerifier()
    verifier.add("registry.local/models/llama:v1")
    kinds = KindTable(config.admission.kinds)
    recording = _Recording(config)
    policy = LibraryPolicyEvaluator(config, recording, kinds)  # type: ignore[arg-type]
    engine = AdmissionEngine(config.admission, ConfigTrustRules(config), verifier, policy)
    try:
        outcome = await engine.review(AdmissionReview.model_validate(admission_review(obj)).request)
    finally:
        await engine.aclose()
    return outcome, recording.inputs


def _deployment(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "team-a"},
        "spec": {"template": {"spec": {"containers": [_server(env=env)]}}},
    }


async def test_an_unverified_source_is_denied_by_policy_even_where_unmatched_artifacts_pass() -> None:
    config = _config(unmatched_artifacts="allow")
    obj = _deployment([{"name": "STORAGE_URI", "value": "s3://models/llama"}])
    outcome, inputs = await _review(config, obj)
    assert outcome.decision == "denied"
    (violation,) = [v for v in outcome.violations if v.policy == "supply_chain.model_sources"]
    assert violation.rule == "unverified_model_source"
    assert "spec.template.spec.containers[0].env[0].value" in violation.message
    (source,) = [a for a in inputs[0]["artifacts"] if a["scheme"] != "oci"]
    assert source["ref"] == "s3://models/llama"
    assert source["source"] == "declared"
    assert source["isModel"] is True
    assert source["allowedSource"] is None
    assert source["locations"] == ["spec.template.spec.containers[0].env[0].value"]
    assert source["usedBy"] == ["server"]
    # the OCI-only policies (signature, mutable tags, registries) leave it to model_sources
    assert not {v.policy for v in outcome.violations} & {
        "supply_chain.signature",
        "supply_chain.mutable_tags",
        "supply_chain.registries",
    }


async def test_an_allowed_source_is_admitted_and_an_unpinned_hf_one_warns() -> None:
    # A source without attestations still fails the provenance policies (no SBOM, no datasets,
    # no licence) where they deny: relaxed here, as a platform allowing such sources must.
    policy = {
        "allowedModelSources": ["s3://models/", "hf://meta-llama/"],
        "requireSbom": False,
        "enforcement": {"provenance": "dryrun"},
    }
    config = _config(policy=policy)
    s3 = _deployment([{"name": "STORAGE_URI", "value": "s3://models/llama"}])
    outcome, inputs = await _review(config, s3)
    assert outcome.decision == "allowed", outcome
    assert [a["allowedSource"] for a in inputs[0]["artifacts"] if a["scheme"] == "s3"] == ["s3://models/"]
    notes = build_response(outcome).response.audit_annotations or {}
    assert json.loads(notes["unverified-sources"]) == [
        {"source": "s3://models/llama", "where": ["spec.template.spec.containers[0].env[0].value"]}
    ]
    hf = _deployment([{"name": "MODEL_ID", "value": "meta-llama/Llama-3-8B"}])
    outcome, _ = await _review(config, hf)
    assert outcome.decision == "warned"
    assert [v.rule for v in outcome.violations if v.action != "dryrun"] == ["unpinned_hf_model"]


async def test_a_lora_adapter_of_a_verified_server_is_an_unverified_model_source() -> None:
    # the image is signed and the base model is in it; the adapter vLLM downloads changes what the
    # model does, and is no OCI artifact: denied like any unverified model source
    policy = {"requireSbom": False, "enforcement": {"provenance": "dryrun"}}
    config = _config(policy=policy)
    args = ["--model", "/opt/model", "--enable-lora", "--lora-modules", "evil=attacker/evil-lora"]
    obj = _deployment([])
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = args
    outcome, _ = await _review(config, obj)
    assert outcome.decision == "denied", outcome
    denied = [v for v in outcome.violations if v.policy == "supply_chain.model_sources"]
    assert [v.artifact for v in denied] == ["hf://attacker/evil-lora"]
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = args[:2]
    outcome, _ = await _review(config, obj)
    assert outcome.decision == "allowed", outcome


async def test_a_triton_model_repository_is_an_unverified_model_source() -> None:
    policy = {"requireSbom": False, "enforcement": {"provenance": "dryrun"}}
    obj = _deployment([])
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["tritonserver", "--model-repository=s3://attacker/models"]
    outcome, _ = await _review(_config(policy=policy), obj)
    assert outcome.decision == "denied", outcome
    denied = [v for v in outcome.violations if v.policy == "supply_chain.model_sources"]
    assert [v.artifact for v in denied] == ["s3://attacker/models"]


async def test_a_speculative_draft_model_of_a_verified_server_is_an_unverified_model_source() -> None:
    # the draft model vLLM downloads for speculative decoding runs beside the verified one
    policy = {"requireSbom": False, "enforcement": {"provenance": "dryrun"}}
    config = _config(policy=policy)
    spec = '{"model": "attacker/draft", "num_speculative_tokens": 5, "method": "draft_model"}'
    args = ["--model", "/opt/model", "--speculative-config", spec]
    obj = _deployment([])
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = args
    outcome, _ = await _review(config, obj)
    assert outcome.decision == "denied", outcome
    denied = [v for v in outcome.violations if v.policy == "supply_chain.model_sources"]
    assert [v.artifact for v in denied] == ["hf://attacker/draft"]
    obj["spec"]["template"]["spec"]["containers"][0]["args"] = args[:2]
    outcome, _ = await _review(config, obj)
    assert outcome.decision == "allowed", outcome


async def test_a_source_naming_another_host_behind_an_allowed_one_is_denied() -> None:
    # https://models.example.com:x@evil.example/ is fetched from evil.example (models.example.com:x
    # is its userinfo): an allowed host prefix must not allow it
    policy = {
        "allowedModelSources": ["https://models.example.com"],
        "requireSbom": False,
        "enforcement": {"provenance": "dryrun"},
    }
    config = _config(policy=policy)
    uri = "https://models.example.com:x@evil.example/llama.safetensors"
    outcome, inputs = await _review(config, _deployment([{"name": "STORAGE_URI", "value": uri}]))
    assert outcome.decision == "denied", outcome
    assert [a["allowedSource"] for a in inputs[0]["artifacts"] if a["scheme"] == "https"] == [None]
    good = "https://models.example.com/llama.safetensors"
    outcome, _ = await _review(config, _deployment([{"name": "STORAGE_URI", "value": good}]))
    assert outcome.decision == "allowed", outcome


async def test_the_default_config_still_denies_a_non_oci_storage_uri() -> None:
    obj = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "llm", "namespace": "team-a"},
        "spec": {"predictor": {"model": {"storage": {"key": "minio", "path": "llama"}}}},
    }
    outcome, _ = await _review(_config(), obj)
    assert outcome.decision == "denied"
    denied = [v for v in outcome.artifacts if v.effect == "deny"]
    assert [v.ref.reference for v in denied] == ["kserve-storage://minio/llama"]
    assert "spec.predictor.model.storage" in (denied[0].message or "")


# --- properties -------------------------------------------------------------------------------

_FIELDS = st.sampled_from(
    [
        "spec",
        "containers",
        "initContainers",
        "env",
        "name",
        "value",
        "valueFrom",
        "args",
        "command",
        "image",
        "volumes",
        "volumeMounts",
        "mountPath",
        "subPath",
        "subPathExpr",
        "persistentVolumeClaim",
        "claimName",
        "csi",
        "driver",
        "volumeAttributes",
        "modelRef",
        "predictor",
        "model",
        "storage",
        "key",
        "path",
        "parameters",
        "storageUris",
        "uri",
        "initializer",
        "trainer",
        "modelURL",
    ]
)
_WORDS = st.sampled_from(
    [
        "STORAGE_URI",
        "MODEL_ID",
        "MODELKIT_REF",
        "--model",
        "--model-pa",
        "vllm",
        "serve",
        "/models",
        "/models/x",
        "s3://b/k",
        "hf://o/m",
        "$(M)",
        "M",
        "model.csi.modelpack.org",
        "storage-initializer",
        "sh -c 'vllm serve $M'",
        "//models/../x",
        "w",
    ]
)
_objects = st.recursive(
    _WORDS | st.text(max_size=12) | st.none() | st.integers(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_FIELDS, children, max_size=5),
    max_leaves=50,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_objects, st.sampled_from(list(KindTable())))
def test_extraction_never_fails_and_every_non_oci_source_is_denied_by_default(obj: Any, kind: Any) -> None:
    body = obj if isinstance(obj, dict) else {"spec": obj}
    refs = extract_references(body, kind, ())
    rules = FakeRules()
    for ref in refs:
        assert ref.reference.strip() == ref.reference or ref.is_oci
        if not ref.is_oci:
            assert "://" in ref.reference
            assert rules.match(ref.reference, "ns").unmatched == "deny"


@given(st.text(max_size=60), st.lists(st.text(max_size=20), max_size=3))
def test_the_allow_list_never_fails_and_never_allows_a_dot_segment(uri: str, prefixes: list[str]) -> None:
    source_parts(uri)
    allowed = allowed_by(uri, prefixes)
    if allowed is not None:
        assert allowed in prefixes
        segments = uri.split("://", 1)[-1].replace("%2e", ".").replace("%2E", ".").split("/")
        assert ".." not in segments and "." not in segments


@pytest.mark.parametrize(
    ("prefix", "found"),
    [("s3-bucket/models", "with its scheme"), ("s3://models/*", "no globs"), ("oci://reg/m", "OCI source")],
)
def test_allowed_model_sources_are_checked_in_the_config(prefix: str, found: str) -> None:
    from guard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"policy\.allowedModelSources\.0") as info:
        parse_config({"policy": {"allowedModelSources": [prefix]}})
    assert found in str(info.value)
