"""helm pre-delete hook: delete guard's webhook configurations before anything else goes, so a
removed guard (no pods left to answer) never blocks the cluster with failurePolicy Fail.

argv: the names of the ValidatingWebhookConfiguration and MutatingWebhookConfiguration. Runs with
the guard image's python and kubernetes client; in-cluster credentials, else the kubeconfig."""

import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(validating: str, mutating: str) -> int:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.AdmissionregistrationV1Api()
    for delete, name in (
        (api.delete_validating_webhook_configuration, validating),
        (api.delete_mutating_webhook_configuration, mutating),
    ):
        try:
            delete(name)
            print(f"deleted {name}")
        except ApiException as err:
            if err.status != 404:
                print(f"could not delete {name}: {err.status} {err.reason}", file=sys.stderr)
                return 1
            print(f"{name}: already gone")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
