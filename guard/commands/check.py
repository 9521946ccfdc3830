"""`guard check -f FILE|DIR|-`: evaluate Kubernetes manifests as the admission webhook would.

Each object (YAML or JSON, multi-document, ``kind: List`` expanded) becomes the CREATE
admission request the API server would send, and goes through the webhook's own
``AdmissionEngine.review`` built from the same config: exempt namespaces, trust rules,
verification, policies and the fail-closed decision are the webhook's. A kind guard does not admit
(a Service, a ConfigMap) is reported as skipped: the webhook is not called for it.

``--offline`` evaluates policies only: no registry is contacted; every artifact is reported as
``notVerified`` and only policy violations (and trust rules that need no registry, such as the
default for an unmatched reference) decide.

Exit codes: 0 every object would be admitted; 1 one would be denied; 2 unreadable input or config;
3 a denial only because a registry could not be reached.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from guard.commands.output import print_json
from guard.errors import EXIT_FAILED, EXIT_INFRA, EXIT_OK, InfrastructureError, UsageError

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_NODES = 5_000_000  # values after YAML aliases are expanded, over all documents of a file
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
OFFLINE_REASON = "not verified: guard check --offline contacts no registry"

CHECK_EXAMPLE = """
Examples:

  guard check -f deploy/inference.yaml --config guard.yaml

  helm template charts/serving | guard check -f - --offline --json
"""


@dataclass(frozen=True)
class ManifestObject:
    source: str  # file[#document]
    body: dict[str, Any]


def _read(source: str) -> list[tuple[str, str]]:
    """``(label, text)`` for every manifest file ``source`` names (``-`` is stdin)."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
        return [("<stdin>", _decode(data, "<stdin>"))]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise UsageError(f"-f {source}: expected manifests (*.yaml, *.yml, *.json), found none")
        return [(str(p), _decode_file(p)) for p in files]
    if not path.is_file():
        raise UsageError(f"-f {source}: expected a manifest file, a directory or -, found nothing there")
    return [(str(path), _decode_file(path))]


def _decode_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as err:
        raise UsageError(f"-f {path}: cannot read it ({err.strerror or err})") from err
    return _decode(data, str(path))


def _decode(data: bytes, label: str) -> str:
    if len(data) > MAX_MANIFEST_BYTES:
        raise UsageError(f"{label}: expected at most {MAX_MANIFEST_BYTES} bytes of manifests, found more")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{label}: expected UTF-8 text, found a byte that is not ({err.reason})") from err


def _documents(label: str, text: str) -> Iterator[ManifestObject]:
    import yaml  # noqa: PLC0415

    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise UsageError(f"{label}: expected YAML or JSON manifests, found a syntax error: {err}") from err
    except RecursionError as err:
        raise UsageError(f"{label}: expected manifests, found nesting too deep to read") from err
    _check_expanded_size(label, documents)
    numbered = [(i, doc) for i, doc in enumerate(documents) if doc is not None]
    for index, doc in numbered:
        where = label if len(numbered) == 1 else f"{label}#{index}"
        yield from _objects(where, doc)


def _check_expanded_size(label: str, documents: list[Any]) -> None:
    """YAML aliases share nodes: a few kilobytes can expand to billions of values (an alias
    bomb) once the engine walks them. Count the nodes as they would be walked, up to a cap."""
    budget = MAX_MANIFEST_NODES
    stack: list[Any] = list(documents)
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise UsageError(
                f"{label}: expected at most {MAX_MANIFEST_NODES} values once YAML aliases are "
                "expanded, found more (an alias bomb?)"
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _objects(where: str, doc: object) -> Iterator[ManifestObject]:
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: expected a Kubernetes object (a mapping), found {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            yield from _objects(f"{where}.items[{i}]", item)
        return
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise UsageError(f"{where}: expected a string {key}, found {doc.get(key)!r}")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name") or meta.get("generateName"), str):
        raise UsageError(f"{where}: expected metadata.name (or generateName), found none")
    yield ManifestObject(where, doc)


def read_manifests(sources: Sequence[str]) -> list[ManifestObject]:
    if sum(1 for s in sources if s == "-") > 1:
        raise UsageError("-f -: stdin can be read once, found it given more than once")
    found: list[ManifestObject] = []
    for source in sources:
        for label, text in _read(source):
            found.extend(_documents(label, text))
    return found


class OfflineVerifier:
    """The webhook's verifier port with no registry behind it (``--offline``)."""

    def resolve(self, reference: str) -> str:
        raise InfrastructureError(OFFLINE_REASON)

    def verify(self, reference: str, digest: str, rule: Any) -> Any:
        raise InfrastructureError(OFFLINE_REASON)

    def answered_recently(self, reference: str, seconds: float) -> bool:
        return False


def _request(obj: ManifestObject, namespace: str, index: int) -> Any:
    from guard.admission.review import AdmissionRequest  # noqa: PLC0415

    body = obj.body
    group, _, version = str(body["apiVersion"]).rpartition("/")
    meta = body["metadata"]
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else namespace
    kind = str(body["kind"])
    return AdmissionRequest.model_validate(
        {
            "uid": f"guard-check-{index}",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "name": meta.get("name") or meta.get("generateName"),
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "guard-check"},
            "object": body,
        }
    )


def _artifact_json(verdict: Any, offline: bool) -> dict[str, Any]:
    not_verified = offline and verdict.status == "error" and OFFLINE_REASON in verdict.message
    return {
        "reference": verdict.ref.reference,
        "scheme": verdict.ref.scheme,
        "rule": verdict.match.rule,
        "status": "notVerified" if not_verified else verdict.status,
        "effect": "pass" if not_verified else verdict.effect,
        "digest": verdict.digest,
        "message": OFFLINE_REASON if not_verified else verdict.message,
    }


def _violation_json(v: Any) -> dict[str, Any]:
    return {
        "policy": v.policy,
        "rule": v.rule,
        "action": v.action,
        "severity": v.severity,
        "message": v.message,
        "artifact": v.artifact,
        "container": v.container,
    }


def _object_json(obj: ManifestObject, request: Any, outcome: Any, offline: bool) -> dict[str, Any]:
    artifacts = [_artifact_json(v, offline) for v in outcome.artifacts]
    # offline, a policy that judges the verification result (supply_chain.signature) sees the
    # artifact as unverifiable: that is --offline's doing, not the manifest's
    violations = [
        _violation_json(v) for v in outcome.violations if not (offline and OFFLINE_REASON in v.message)
    ]
    decision = outcome.decision
    infra_only = False
    if decision == "denied":
        unverifiable = {a["reference"] for a in artifacts if a["status"] in ("error", "notVerified")}
        causes_policy = bool(outcome.message) or any(
            v["action"] == "deny"
            and not (v["rule"] == "verification_error" and v["artifact"] in unverifiable)
            for v in violations
        )
        causes_verdict = [a for a in artifacts if a["effect"] == "deny"]
        if offline and not causes_policy and not causes_verdict:
            decision = "warned" if any(v["action"] == "warn" for v in violations) else "allowed"
        elif not causes_policy and causes_verdict and all(a["status"] == "error" for a in causes_verdict):
            infra_only = True
    return {
        "source": obj.source,
        "apiVersion": obj.body["apiVersion"],
        "kind": request.kind.kind,
        "namespace": request.namespace,
        "name": request.name,
        "decision": decision,
        "allowed": decision != "denied",
        "registryUnavailable": infra_only,
        "message": outcome.message,
        "warnings": list(outcome.warnings),
        "artifacts": artifacts,
        "violations": violations,
        "policies": list(outcome.policies),
    }


async def _evaluate(
    config: Any, objects: Sequence[ManifestObject], namespace: str, offline: bool
) -> list[dict[str, Any]]:
    from guard.admission.kinds import KindTable  # noqa: PLC0415
    from guard.admission.pipeline import AdmissionEngine  # noqa: PLC0415
    from guard.admission.policies import LibraryPolicyEvaluator  # noqa: PLC0415
    from guard.admission.recalls import RecallIndex  # noqa: PLC0415
    from guard.admission.wiring import ConfigTrustRules, build_engine, check_admission_config  # noqa: PLC0415
    from guard.energy.usage import usage_store  # noqa: PLC0415
    from guard.policy.engine import make_engine  # noqa: PLC0415

    if offline:  # build_engine's assembly, with the registry-free verifier
        check_admission_config(config)
        kinds = KindTable(config.admission.kinds)
        policy = LibraryPolicyEvaluator(config, make_engine(config.policy), kinds, usage=usage_store(config))
        engine = AdmissionEngine(
            config.admission,
            ConfigTrustRules(config),
            OfflineVerifier(),
            policy,
            None,
            recalls=RecallIndex(config.recalls),
        )
    else:
        engine = await build_engine(config)
    results: list[dict[str, Any]] = []
    try:
        for index, obj in enumerate(objects):
            request = _request(obj, namespace, index)
            if engine.kinds.lookup(request.kind.group, request.kind.kind) is None:
                results.append(_skipped(obj, request))
                continue
            outcome = await engine.review(request)
            results.append(_object_json(obj, request, outcome, offline))
    finally:
        await engine.aclose()
    return results


def _skipped(obj: ManifestObject, request: Any) -> dict[str, Any]:
    return {
        "source": obj.source,
        "apiVersion": obj.body["apiVersion"],
        "kind": request.kind.kind,
        "namespace": request.namespace,
        "name": request.name,
        "decision": "skipped",
        "allowed": True,
        "registryUnavailable": False,
        "message": "not a kind guard admits (the webhook is not called for it)",
        "warnings": [],
        "artifacts": [],
        "violations": [],
        "policies": [],
    }


def exit_code(objects: Sequence[Mapping[str, Any]]) -> int:
    denied = [o for o in objects if o["decision"] == "denied"]
    if not denied:
        return EXIT_OK
    return EXIT_INFRA if all(o["registryUnavailable"] for o in denied) else EXIT_FAILED


def summary(objects: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"objects": len(objects), "allowed": 0, "warned": 0, "denied": 0, "skipped": 0}
    for o in objects:
        counts[o["decision"]] += 1
    return counts


def _print_text(objects: Sequence[Mapping[str, Any]], offline: bool) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415

    out = Console(highlight=False, soft_wrap=True)
    style = {"allowed": "green", "warned": "yellow", "denied": "bold red", "skipped": "dim"}
    for o in objects:
        label = f"{o['kind']}/{o['name']}" + (f" -n {o['namespace']}" if o["namespace"] else "")
        out.print(
            f"[{style[o['decision']]}]{o['decision'].upper():8}[/] {escape(label)}"
            f"  [dim]{escape(o['source'])}[/]"
        )
        if o["decision"] == "skipped":
            continue
        if o["message"]:
            out.print(f"    {escape(o['message'])}")
        for a in o["artifacts"]:
            out.print(
                f"    {a['status']:12} {escape(a['reference'])}"
                + (f": {escape(a['message'])}" if a["message"] and a["effect"] != "pass" else "")
            )
        for v in o["violations"]:
            out.print(f"    {v['action']:12} {escape(v['policy'])}: {escape(v['message'])}")
        for w in o["warnings"]:
            out.print(f"    warning      {escape(w)}")
    s = summary(objects)
    mode = " (offline: policies only, nothing verified)" if offline else ""
    out.print(
        f"{s['objects']} objects: {s['allowed']} allowed, {s['warned']} warned, "
        f"{s['denied']} denied, {s['skipped']} skipped{mode}"
    )


def check(
    files: Annotated[
        list[str],
        typer.Option(
            "--filename",
            "-f",
            help="Manifest file, directory (recursive) or - for stdin; repeatable.",
            metavar="FILE|DIR|-",
            show_default=False,
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="guard config file (YAML): the webhook's trust rules and policies."),
    ] = None,
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of objects that name none.")
    ] = "default",
    offline: Annotated[
        bool, typer.Option("--offline", help="Evaluate policies only; contact no registry.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Evaluate Kubernetes manifests exactly as the admission webhook would."""
    from guard.config import load_config  # noqa: PLC0415

    objects = read_manifests(files)
    if not objects:
        raise UsageError(f"-f {' '.join(files)}: expected Kubernetes objects, found none")
    loaded = load_config(config)
    results = asyncio.run(_evaluate(loaded, objects, namespace, offline))
    code = exit_code(results)
    if json_output:
        doc = {"offline": offline, "objects": results, "summary": summary(results), "exitCode": code}
        print_json(doc)
    else:
        _print_text(results, offline)
    if code:
        raise typer.Exit(code)


check.__doc__ = f"{check.__doc__}\n{CHECK_EXAMPLE}"


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("check", help=check.__doc__)(check)
