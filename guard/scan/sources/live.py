"""Live source: the API server, through the official ``kubernetes`` client.

1. Connect: a kubeconfig (and context) or the in-cluster service account; a kubeconfig that does
   not load is a config error (exit 2).
2. Discover where each kind is served (``/api/v1``, ``/apis/<group>`` and its preferred version):
   one or two GETs per API group, never one per object.
3. LIST each kind in pages (``limit``, default 500, and ``continue``), all namespaces or each
   ``--namespace``. Pages go straight to the sink; nothing is kept per page.
4. A 410 (the continue token expired) restarts that kind's list from the start (a consistent
   list) and is counted; a 403 makes that kind "not assessed" with the RBAC rule to grant; a
   group the server does not serve is "not served". Only when nothing could be listed at all
   does the scan fail (exit 3).
5. Every request waits for the client-side rate limit (default 20 QPS, burst 40).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from guard.errors import ConfigError, InfrastructureError
from guard.scan.result import KindListing, NotAssessed, RbacRule, Source
from guard.scan.sources import ObjectSink, SourceOutcome
from guard.scan.targets import ScanTarget, Scope

MAX_RESTARTS = 3
_MAX_BODY = 256 * 1024 * 1024  # a page larger than this is not an API server answer


class RateLimiter:
    """A token bucket: ``qps`` requests per second on average, ``burst`` at once."""

    def __init__(
        self,
        qps: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0:
            raise ConfigError(f"expected a positive QPS limit, found {qps}")
        self._qps = qps
        self._burst = float(burst if burst is not None else max(1, int(qps * 2)))
        self._tokens = self._burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self._qps
                self._sleep(wait)
                self._last = self._clock()
                self._tokens = 0.0
            else:
                self._tokens -= 1


class ApiError(Exception):
    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        text = self.body.get("message")
        return text if isinstance(text, str) else f"HTTP {self.status}"


class KubeApi:
    """Raw GETs through the kubernetes client's transport and auth (tokens, client certificates,
    exec plugins), returning parsed JSON without the client's per-object model classes."""

    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        qps: float = 20.0,
        burst: int | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        from kubernetes import client, config  # noqa: PLC0415
        from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

        configuration = client.Configuration()
        try:
            if in_cluster:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                self.name = "in-cluster"
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                )
                self.name = context or _current_context(kubeconfig) or "current-context"
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as err:
            where = (
                "the in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
            )
            raise ConfigError(f"cannot use {where}: {err}") from err
        except Exception as err:  # yaml errors and the like from a kubeconfig that does not parse
            raise ConfigError(f"kubeconfig {kubeconfig or '(default)'} does not load: {err}") from err
        configuration.retries = 2
        self.server = str(configuration.host)
        self._api = client.ApiClient(configuration)
        self._limiter = RateLimiter(qps, burst)
        self._timeout = timeout_seconds
        self.requests = 0

    def get(self, path: str, query: Sequence[tuple[str, str | int]] = ()) -> Mapping[str, Any]:
        """GET ``path``; raises ApiError for an HTTP error, InfrastructureError when the server
        cannot be reached or answers with something that is not JSON."""
        return self._request("GET", path, query)

    def apply(self, path: str, obj: Mapping[str, Any], field_manager: str = "guard") -> Mapping[str, Any]:
        """Server-side apply ``obj`` at ``path`` (the object's own URL), taking over its fields."""
        body = json.dumps(obj, separators=(",", ":")).encode()
        query: list[tuple[str, str | int]] = [("fieldManager", field_manager), ("force", "true")]
        return self._request("PATCH", path, query, body=body, content_type="application/apply-patch+yaml")

    def _request(
        self,
        verb: str,
        path: str,
        query: Sequence[tuple[str, str | int]],
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Mapping[str, Any]:
        self._limiter.acquire()
        self.requests += 1
        try:
            method, url, headers, _, post = self._api.param_serialize(
                verb,
                path,
                query_params=list(query),
                header_params={"Content-Type": content_type} if content_type else None,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(method, url, headers, body, post, _request_timeout=self._timeout)
            data = response.read()  # type: ignore[no-untyped-call]
        except Exception as err:  # urllib3 / ssl / socket errors: the server could not be reached
            raise InfrastructureError(f"the API server {self.server} could not be reached: {err}") from err
        if len(data) > _MAX_BODY:
            raise InfrastructureError(
                f"GET {path}: the API server answered {len(data)} bytes, more than expected"
            )
        try:
            parsed = json.loads(data) if data else {}
        except (ValueError, RecursionError) as err:
            raise InfrastructureError(f"GET {path}: the API server's answer is not JSON ({err})") from err
        if not isinstance(parsed, dict):
            raise InfrastructureError(f"GET {path}: expected a JSON object, found {type(parsed).__name__}")
        if response.status >= 400:
            raise ApiError(response.status, parsed)
        return parsed


def _current_context(kubeconfig: Path | None) -> str | None:
    try:
        from kubernetes.config.kube_config import list_kube_config_contexts  # noqa: PLC0415

        path = str(kubeconfig) if kubeconfig else None
        _, active = list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
        name = active.get("name") if isinstance(active, dict) else None
        return name if isinstance(name, str) else None
    except Exception:
        return None


def _forbidden(target: ScanTarget, message: str) -> NotAssessed:
    return NotAssessed(
        api_version=target.api_version,
        kind=target.kind,
        reason="forbidden",
        message=f"the scanner may not list {target.resource or target.kind}: {message}",
        missing_rule=RbacRule(
            api_groups=(target.group,), resources=(target.resource or target.kind.lower(),)
        ),
        source="cluster",
    )


class LiveSource:
    def __init__(self, api: KubeApi, *, page_size: int = 500) -> None:
        if page_size <= 0:
            raise ConfigError(f"expected a positive page size, found {page_size}")
        self._api = api
        self._page_size = page_size
        self._groups: dict[str, Mapping[str, Mapping[str, Any]] | ApiError] = {}

    # -- discovery --------------------------------------------------------------------------

    def _resources(self, group: str) -> Mapping[str, Mapping[str, Any]] | ApiError:
        """kind -> resource entry (with ``version`` added) of the group's preferred version."""
        if group in self._groups:
            return self._groups[group]
        try:
            if group == "":
                versions = ["v1"]
                paths = {"v1": "/api/v1"}
            else:
                info = self._api.get(f"/apis/{group}")
                preferred = info.get("preferredVersion") or {}
                listed: list[Any] = [
                    v.get("version") for v in info.get("versions") or [] if isinstance(v, Mapping)
                ]
                wanted = preferred.get("version") if isinstance(preferred, Mapping) else None
                versions = [v for v in dict.fromkeys([wanted, *listed]) if isinstance(v, str)]
                paths = {v: f"/apis/{group}/{v}" for v in versions}
            kinds: dict[str, Mapping[str, Any]] = {}
            for version in reversed(versions):  # the preferred version wins
                found = self._api.get(paths[version])
                for entry in found.get("resources") or []:
                    if isinstance(entry, Mapping) and "/" not in str(entry.get("name", "")):
                        kinds[str(entry.get("kind"))] = {**entry, "version": version}
            result: Mapping[str, Mapping[str, Any]] | ApiError = kinds
        except ApiError as err:
            result = err
        self._groups[group] = result
        return result

    def _locate(self, target: ScanTarget) -> ScanTarget | NotAssessed:
        found = self._resources(target.group)
        if isinstance(found, ApiError):
            if found.status == 403:
                return _forbidden(target, found.message)
            return NotAssessed(
                api_version=target.api_version,
                kind=target.kind,
                reason="not-served",
                message=f"the API server does not serve the group {target.group or 'core'} "
                f"({found.message}); nothing of kind {target.kind} can run",
                source="cluster",
            )
        entry = found.get(target.kind)
        if entry is None:
            return NotAssessed(
                api_version=target.api_version,
                kind=target.kind,
                reason="not-served",
                message=f"the API server does not serve kind {target.kind} in group {target.group or 'core'}",
                source="cluster",
            )
        return ScanTarget(target.group, target.kind, str(entry["version"]), str(entry["name"]), target.spec)

    # -- listing ----------------------------------------------------------------------------

    def _paths(self, target: ScanTarget, scope: Scope) -> Iterator[str]:
        base = f"/apis/{target.group}/{target.version}" if target.group else f"/api/{target.version}"
        if scope.namespaces is None:
            yield f"{base}/{target.resource}"
        else:
            for namespace in sorted(scope.namespaces):
                if scope.includes(namespace):
                    yield f"{base}/namespaces/{namespace}/{target.resource}"

    def _list(self, target: ScanTarget, scope: Scope, sink: ObjectSink) -> KindListing:
        restarts = 0
        calls = 0
        while True:
            sink.begin(target)
            objects = 0
            version: str | None = None
            try:
                for path in self._paths(target, scope):
                    token: str | None = None
                    while True:
                        query: list[tuple[str, str | int]] = [("limit", self._page_size)]
                        if token:
                            query.append(("continue", token))
                        calls += 1
                        page = self._api.get(path, query)
                        meta = page.get("metadata") or {}
                        version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
                        for item in page.get("items") or []:
                            if not isinstance(item, Mapping):
                                continue
                            item_meta = item.get("metadata") or {}
                            namespace = item_meta.get("namespace") if isinstance(item_meta, Mapping) else None
                            if isinstance(namespace, str) and scope.includes(namespace):
                                # a list's items carry no apiVersion/kind: restore them
                                sink.add(
                                    target, {**item, "apiVersion": target.api_version, "kind": target.kind}
                                )
                                objects += 1
                        token = meta.get("continue") if isinstance(meta, Mapping) else None
                        if not token:
                            break
            except ApiError as err:
                if err.status == 410 and restarts < MAX_RESTARTS:
                    restarts += 1
                    continue
                raise
            sink.commit(target)
            return KindListing(
                api_version=target.api_version,
                kind=target.kind,
                objects=objects,
                list_calls=calls,
                restarts=restarts,
                resource_version=version if isinstance(version, str) else None,
            )

    def collect(self, targets: Sequence[ScanTarget], scope: Scope, sink: ObjectSink) -> SourceOutcome:
        listed: list[KindListing] = []
        outcome = SourceOutcome(source=Source(type="cluster", name=self._api.name, server=self._api.server))
        for target in targets:
            try:
                located = self._locate(target)
                if isinstance(located, NotAssessed):
                    outcome.not_assessed.append(located)
                    continue
                listing = self._list(located, scope, sink)
            except ApiError as err:
                if err.status == 403:
                    outcome.not_assessed.append(_forbidden(target, err.message))
                    continue
                why = "its list kept expiring (410)" if err.status == 410 else err.message
                outcome.not_assessed.append(
                    NotAssessed(
                        api_version=target.api_version,
                        kind=target.kind,
                        reason="error",
                        message=f"listing {target.kind} failed: {why} (HTTP {err.status})",
                        source="cluster",
                    )
                )
                outcome.failures.append(f"{target.kind}: HTTP {err.status} {why}")
                continue
            except InfrastructureError as err:
                outcome.not_assessed.append(
                    NotAssessed(
                        api_version=target.api_version,
                        kind=target.kind,
                        reason="error",
                        message=str(err),
                        source="cluster",
                    )
                )
                outcome.failures.append(f"{target.kind}: {err}")
                continue
            listed.append(listing)
            outcome.listed_kinds += 1
        outcome.source = outcome.source.model_copy(update={"listed": tuple(listed)})
        return outcome
