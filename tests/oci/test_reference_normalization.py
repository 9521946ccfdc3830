"""One reference grammar: every spelling of a registry is one registry (issue 9, item 11).

``registry.example.com:443/...``, ``registry-1.docker.io/...``, ``docker.io:443/...`` and
``index.docker.io/...`` used to miss the rule written for the same registry; the CLI and the
policy rules read references with two grammars. Property-based: the parser never raises anything
but guard's UsageError on arbitrary text, and normalisation is idempotent.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.admission.references import extract_references
from guard.admission.settings import KindSpec
from guard.config import parse_config
from guard.errors import UsageError
from guard.oci.reference import parse_image_reference, parse_reference
from guard.policy.rules import match_rule

D = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("registry.example.com:443/models/llama:v1", "registry.example.com/models/llama"),
        ("Registry.Example.COM/models/llama:v1", "registry.example.com/models/llama"),
        ("registry.example.com./models/llama:v1", "registry.example.com/models/llama"),
        ("oci://REGISTRY.example.com:443/models/llama:v1", "registry.example.com/models/llama"),
        ("registry-1.docker.io/library/nginx:1", "docker.io/library/nginx"),
        ("docker.io:443/nginx:1", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("registry.hub.docker.com/library/nginx", "docker.io/library/nginx"),
        ("nginx", "docker.io/library/nginx"),
        ("bitnami/redis", "docker.io/bitnami/redis"),
        ("[0:0::1]:5000/m", "[::1]:5000/m"),
        ("[::1]:443/m", "[::1]/m"),
        ("localhost:443/m", "localhost/m"),
        ("localhost:05000/m", "localhost:5000/m"),
        # found by the idempotence fuzz: "2./2" read as host "2" re-parsed as Docker Hub's 2/2
        ("Registry./m", "registry./m"),
        ("2./2", "2./2"),
        ("registry.:5000/m", "registry:5000/m"),
    ],
)
def test_every_spelling_of_a_registry_is_one_name(spelling: str, name: str) -> None:
    assert parse_image_reference(spelling).name == name


def test_a_one_label_host_keeps_its_default_port() -> None:
    # 'myregistry/m' would be Docker Hub's myregistry/m: the port is what makes it a host
    ref = parse_image_reference("myregistry:443/m")
    assert ref.name == "myregistry:443/m"
    assert parse_image_reference(ref.image()) == ref


def test_docker_hub_is_reached_at_its_api_host() -> None:
    assert parse_reference("oci://docker.io/nginx:1").endpoint == "registry-1.docker.io"
    assert parse_reference("oci://index.docker.io/library/nginx").endpoint == "registry-1.docker.io"
    assert parse_reference("oci://registry.example:5000/m").endpoint == "registry.example:5000"


def test_cli_and_policy_read_one_grammar() -> None:
    for text in ("registry.example.com:443/m/x:v1", f"docker.io/nginx@{D}", "localhost:5000/a/b"):
        assert parse_reference(f"oci://{text}").name == parse_image_reference(text).name


_CONFIG = {
    "authorities": {"ci": {"kind": "key", "key": "/dev/null"}},
    "rules": [
        {"name": "corp", "artifacts": ["registry.example.com/models/**"], "authorities": ["ci"]},
        {"name": "hub", "artifacts": ["docker.io/library/*"], "authorities": ["ci"]},
        {"name": "spelled", "artifacts": ["Index.Docker.IO:443/acme/*"], "authorities": ["ci"]},
    ],
}


@pytest.mark.parametrize(
    ("reference", "rule"),
    [
        ("registry.example.com:443/models/llama:v1", "corp"),
        ("REGISTRY.EXAMPLE.COM/models/llama:v1", "corp"),
        ("registry-1.docker.io/library/nginx:1", "hub"),
        ("docker.io:443/nginx:1", "hub"),
        ("index.docker.io/nginx", "hub"),
        ("nginx", "hub"),
        ("acme/tool:1", "spelled"),  # a rule written with another spelling still covers the host
        ("registry-1.docker.io/acme/tool", "spelled"),
    ],
)
def test_every_spelling_matches_the_rule_for_that_registry(reference: str, rule: str) -> None:
    config = parse_config(_CONFIG)
    found = match_rule(config.rules, reference, "default")
    assert found is not None and found.name == rule


def test_admission_groups_spellings_of_one_artifact() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "image": "nginx"},
                {"name": "b", "image": "docker.io/library/nginx:latest"},
                {"name": "c", "image": "INDEX.docker.io:443/nginx"},
                {"name": "d", "image": "registry.example.com/m:v1"},
            ]
        }
    }
    refs = extract_references(pod, KindSpec(group="", kind="Pod", pod_specs=("spec",)), ())
    assert [r.reference for r in refs] == ["nginx", "registry.example.com/m:v1"]
    assert [o.container for o in refs[0].occurrences] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "oci://",
        "registry.example.com:0/m",
        "registry.example.com:65536/m",
        "-bad.example/m",
        "[::g]/m",
        "[::1/m",
        "m@sha256:ABC",
        "m@md5:" + "a" * 32,
        "Upper/Case",
        "x" * 5000,
    ],
)
def test_malformed_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_image_reference(text)


# --- properties -------------------------------------------------------------------------------

_ALNUM = "abcxyzABCXYZ0129"
_label = st.builds(
    lambda a, mid, b: a + mid + b,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-", max_size=6),
    st.sampled_from(_ALNUM),
)
_host = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _label, _label),
    st.sampled_from(
        ["docker.io", "index.docker.io", "registry-1.docker.io", "localhost", "[::1]", "127.0.0.1"]
    ),
    _label.map(str.lower),  # bare: a Docker Hub namespace; with a port: a one-label host
)
_port = st.one_of(st.just(""), st.sampled_from([":443", ":5000", ":80", ":0443"]))
_component = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+){0,2}", fullmatch=True)
_repo = st.lists(_component, min_size=1, max_size=3).map("/".join)
_tag = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,10}", fullmatch=True))
_digest = st.one_of(st.none(), st.just(D))


@st.composite
def _references(draw: st.DrawFn) -> str:
    host = draw(st.one_of(st.none(), st.builds(lambda h, p: h + p, _host, _port)))
    # without a host, a first component with a dot would read as one
    text = draw(_repo).replace(".", "-") if host is None else f"{host}/{draw(_repo)}"
    tag, digest = draw(_tag), draw(_digest)
    return text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_guards_error(text: str) -> None:
    for parse in (parse_image_reference, parse_reference):
        with contextlib.suppress(UsageError):
            parse(text)


@_FUZZ
@given(st.one_of(_references(), st.text(alphabet="abcAB.:/@[]-_9sha256", max_size=80)))
def test_normalisation_is_idempotent(text: str) -> None:
    try:
        ref = parse_image_reference(text)
    except UsageError:
        return
    again = parse_image_reference(ref.image())
    assert again == ref
    assert parse_reference(str(ref)) == ref


@_FUZZ
@given(_references())
def test_generated_references_parse_to_one_spelling(text: str) -> None:
    ref = parse_image_reference(text)
    host = ref.registry
    assert host == host.lower()
    assert host not in ("index.docker.io", "registry-1.docker.io", "docker.io:443")
    if "." in host or host.startswith("["):
        assert not host.endswith(":443")
    if host == "docker.io":
        assert "/" in (ref.repository or "")
