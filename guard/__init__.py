"""guard: policy and supply-chain security for machine-learning model artifacts on Kubernetes.

The package does no work at import time: every capability lives in its own sub-package
(``guard.signing``, ``guard.oci``, ``guard.attest``, ``guard.policy``, ``guard.admission``)
and is imported by whoever needs it.
"""

__version__ = "0.1.0"
