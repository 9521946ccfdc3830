"""Offline source: files of ``kubectl get ... -o json`` / ``-o yaml`` output.

Each file holds a List (``kind: List`` or ``<Kind>List`` with ``items``), one object, or several
YAML documents of either. Files are read one at a time, so memory follows the largest file, not
the export; split a large export per namespace (``kubectl get -n NS ... -o json``). Objects of a
kind the kinds table does not know are counted and reported as not assessed, never dropped
silently; a file that is not such output fails the scan with what was expected and found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from guard.errors import UsageError
from guard.scan.result import KindListing, NotAssessed, Source
from guard.scan.sources import ObjectSink, SourceOutcome
from guard.scan.targets import ScanTarget, Scope
from guard.textfile import read_user_text
from guard.untrusted import parse_json

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SNAPSHOT_MAX_BYTES = 2**62  # the user's own file, read whole already: no cap of its size
SNAPSHOT_MAX_DEPTH = 500  # below CPython's recursion limit, far above kubectl's deepest output

_CORE_GROUPS = frozenset(
    {
        "",
        "apps",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "policy",
        "autoscaling",
        "discovery.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
    }
)
# Kinds `kubectl get all` and exports bring along that never run a container: counted as
# "not-a-workload", not as unknown kinds (which make the result partial).
NOT_WORKLOADS = frozenset(
    {
        "Service",
        "ConfigMap",
        "Secret",
        "Endpoints",
        "EndpointSlice",
        "Namespace",
        "Node",
        "Event",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ControllerRevision",
        "LimitRange",
        "ResourceQuota",
        "StorageClass",
        "PriorityClass",
        "Lease",
        "CustomResourceDefinition",
    }
)


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__


def _shares_a_node(doc: Any) -> bool:
    """Whether a loaded YAML document holds one mapping or sequence twice: a YAML alias, which
    kubectl never writes, and which grows a document exponentially once walked (nine levels of
    ten aliases make 10^9 strings of a 1 KB file). Iterative, and linear in the distinct nodes."""
    seen: set[int] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                return True
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return False


def _unparsable(path: Path, err: BaseException) -> UsageError:
    return UsageError(
        f"snapshot file {path}: expected the JSON or YAML output of `kubectl get -o json|yaml`, "
        f"found content that does not parse: {_first_line(err)}"
    )


def _documents(path: Path) -> Iterator[Any]:
    text = read_user_text(path, what="snapshot file", expected="kubectl JSON or YAML output")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # guard's parser for JSON someone else wrote: no duplicate keys (two readers of one
        # document never see two values), no NaN, bounded nesting (deep enough for any CRD's
        # schema; CPython's decoder recurses per level)
        try:
            doc = parse_json(
                text, "JSON", max_bytes=SNAPSHOT_MAX_BYTES, max_depth=SNAPSHOT_MAX_DEPTH, error=UsageError
            )
        except UsageError as err:
            raise _unparsable(path, err) from err
        yield doc
        return
    try:
        for index, doc in enumerate(yaml.load_all(text, Loader=_Loader)):
            if _shares_a_node(doc):
                raise UsageError(
                    f"snapshot file {path}, document {index + 1}: expected the YAML kubectl writes, "
                    "found an alias (*name) reusing a node: aliases are refused (each one is expanded "
                    "wherever the document is read, so a small file can grow without bound)"
                )
            yield doc
    except (ValueError, yaml.YAMLError, RecursionError) as err:
        raise _unparsable(path, err) from err


def _objects(path: Path) -> Iterator[Mapping[str, Any]]:
    for index, doc in enumerate(_documents(path)):
        if doc is None:
            continue
        where = f"snapshot file {path}, document {index + 1}"
        if not isinstance(doc, Mapping):
            raise UsageError(f"{where}: expected a Kubernetes object or List, found {type(doc).__name__}")
        items = doc.get("items")
        if isinstance(doc.get("kind"), str) and str(doc["kind"]).endswith("List") and "items" in doc:
            if not isinstance(items, list):
                raise UsageError(f"{where}: expected items to be a list, found {type(items).__name__}")
            for i, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise UsageError(f"{where}, items[{i}]: expected an object, found {type(item).__name__}")
                yield item
        else:
            yield doc


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        return None
    group, _, version = api_version.rpartition("/")
    return group, version, kind


class SnapshotSource:
    """Objects from exported files; ``collect`` reads every file once."""

    def __init__(self, paths: Sequence[Path]) -> None:
        if not paths:
            raise UsageError("expected at least one snapshot file")
        self._paths = tuple(paths)

    def collect(self, targets: Sequence[ScanTarget], scope: Scope, sink: ObjectSink) -> SourceOutcome:
        by_key = {(t.group, t.kind): t for t in targets}
        rank = {t: i for i, t in enumerate(targets)}
        counts: Counter[ScanTarget] = Counter()
        versions: dict[ScanTarget, str] = {}
        unknown: Counter[tuple[str, str]] = Counter()
        malformed = 0
        for target in targets:
            sink.begin(target)
        for path in self._paths:
            picked: list[tuple[int, ScanTarget, Mapping[str, Any]]] = []
            for obj in _objects(path):
                gvk = _group_kind(obj)
                if gvk is None:
                    malformed += 1
                    continue
                group, version, kind = gvk
                found = by_key.get((group, kind))
                if found is None:
                    if not kind.endswith("List"):
                        unknown[(obj["apiVersion"], kind)] += 1
                    continue
                target = found
                meta = obj.get("metadata")
                namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
                if not isinstance(namespace, str) or not namespace:
                    malformed += 1  # every kind of the table is namespaced: not kubectl output
                    continue
                if not scope.includes(namespace):
                    continue
                versions.setdefault(target, version)
                picked.append((rank[target], target, obj))
            picked.sort(key=lambda item: item[0])  # owners before what they own, within a file
            for _, target, obj in picked:
                sink.add(target, obj)
                counts[target] += 1
            del picked
        for target in targets:
            sink.commit(target)
        listed = tuple(
            KindListing(
                api_version=(f"{t.group}/{versions[t]}" if t.group else versions[t])
                if t in versions
                else t.api_version,
                kind=t.kind,
                objects=counts[t],
            )
            for t in targets
            if counts[t]
        )
        source = Source(type="snapshot", name=", ".join(str(p) for p in self._paths), listed=listed)
        outcome = SourceOutcome(source=source, listed_kinds=len(targets))
        for (api_version, kind), n in sorted(unknown.items()):
            inert = kind in NOT_WORKLOADS and api_version.rpartition("/")[0] in _CORE_GROUPS
            outcome.not_assessed.append(
                NotAssessed(
                    api_version=api_version,
                    kind=kind,
                    reason="not-a-workload" if inert else "unknown-kind",
                    message=f"{kind} runs no container: nothing to assess"
                    if inert
                    else f"guard's kinds table does not say where {kind} ({api_version}) carries "
                    f"images or models; add it to admission.kinds in the config to assess it",
                    objects=n,
                    source="snapshot",
                )
            )
        if malformed:
            outcome.not_assessed.append(
                NotAssessed(
                    kind="(unknown)",
                    reason="malformed",
                    message="objects without a string apiVersion, kind or metadata.namespace could not "
                    "be assessed",
                    objects=malformed,
                    source="snapshot",
                )
            )
        return outcome
