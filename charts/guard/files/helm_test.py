"""`helm test`: post two AdmissionReviews to the release's webhook Service over verified TLS.

1. a Pod in a namespace guard checks, its model an unsigned reference in a registry that cannot
   exist (registry.invalid, RFC 2606): the release must deny it (in mode warn: admit it with
   guard's would-deny warning). A signed sample is not used: no artifact signed by the keys this
   release trusts can be assumed to exist in an arbitrary cluster.
2. the same Pod in the release namespace, which guard always excludes: it must be allowed.

argv: URL of /validate, the release namespace, the mode (deny | warn). Env GUARD_TEST_CONNECT
(host:port) connects elsewhere while verifying the Service's name (for tests outside a cluster).
Runs with the guard image's python: standard library only."""

import http.client
import json
import os
import socket
import ssl
import sys
import urllib.parse
import uuid

CA_FILE = "/ca/ca.crt"
IMAGE = "registry.invalid/guard-helm-test/unsigned-model:latest"


def review(namespace: str) -> dict[str, object]:
    uid = str(uuid.uuid4())
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "guard-helm-test", "namespace": namespace},
        "spec": {"containers": [{"name": "model", "image": IMAGE}]},
    }
    request = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "guard-helm-test",
        "namespace": namespace,
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:helm-test"},
        "object": pod,
        "oldObject": None,
        "dryRun": True,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class _Connection(http.client.HTTPSConnection):
    def __init__(self, name: str, port: int, connect: tuple[str, int], context: ssl.SSLContext) -> None:
        super().__init__(name, port, context=context, timeout=30)
        self._connect_to, self._tls = connect, context

    def connect(self) -> None:
        raw = socket.create_connection(self._connect_to, timeout=30)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(url: str, body: dict[str, object], ca_file: str) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    name, port = parts.hostname or "", parts.port or 443
    target = os.environ.get("GUARD_TEST_CONNECT")
    connect = (target.rsplit(":", 1)[0], int(target.rsplit(":", 1)[1])) if target else (name, port)
    context = ssl.create_default_context(cafile=ca_file)  # verified: the webhook's CA and name
    conn = _Connection(name, port, connect, context)
    conn.request("POST", parts.path, json.dumps(body), {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise SystemExit(f"FAIL: {url} answered {answer.status}: {data[:300]!r}")
    response: dict[str, object] = json.loads(data)["response"]
    if response.get("uid") != body["request"]["uid"]:  # type: ignore[index]
        raise SystemExit("FAIL: the response's uid is not the request's")
    return response


def main(url: str, release_namespace: str, mode: str, ca_file: str = CA_FILE) -> int:
    checked = post(url, review("guard-helm-test-enforced"), ca_file)
    warnings = [str(w) for w in checked.get("warnings") or []]  # type: ignore[attr-defined]
    if mode == "warn":
        if not (checked["allowed"] and any("would deny" in w for w in warnings)):
            print(f"FAIL: mode warn, expected allowed with a would-deny warning, got {checked}")
            return 1
    elif checked["allowed"]:
        print(f"FAIL: an unsigned, unverifiable model was allowed: {checked}")
        return 1
    print(f"ok: unsigned model {'warned' if mode == 'warn' else 'denied'}: "
          f"{(checked.get('status') or {}).get('message', warnings)}")  # type: ignore[union-attr]
    exempt = post(url, review(release_namespace), ca_file)
    if not exempt["allowed"]:
        print(f"FAIL: a Pod in the excluded namespace {release_namespace} was denied: {exempt}")
        return 1
    print(f"ok: the release namespace {release_namespace} is excluded (allowed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
