"""A cluster-scoped object (no namespace in its request) is judged by the policy library like any
other: its policy input has "" for the namespace, as the input schema says."""

from __future__ import annotations

from guard.admission.kinds import KindTable
from guard.admission.outcome import ArtifactVerdict
from guard.admission.policies import LibraryPolicyEvaluator
from guard.admission.ports import RuleMatch
from guard.admission.references import extract_references
from guard.admission.review import AdmissionReview
from guard.config import parse_config
from guard.policy.engine import make_engine
from guard.policy.examples import CONFIG
from guard.testing.admission import admission_review


async def test_a_cluster_scoped_object_is_judged_by_its_policies_not_refused_by_the_engine() -> None:
    """A request without a namespace (a ClusterServingRuntime) has "" as its namespace in the
    policy input, as the schema says: a null made regorus refuse the messages formatting it with
    ``%q`` (no trust rule covers it in namespace %q), and the whole evaluation failed."""
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": "vllm"},
        "spec": {"containers": [{"name": "kserve-container", "image": "registry.local/models/llama:v1"}]},
    }
    spec = KindTable().lookup("serving.kserve.io", "ClusterServingRuntime")
    assert spec is not None
    verdicts = [
        ArtifactVerdict(
            ref=ref, match=RuleMatch(None, "h"), status="unmatched", effect="deny", message="no rule"
        )
        for ref in extract_references(runtime, spec, ())
    ]
    config = parse_config(CONFIG)
    evaluator = LibraryPolicyEvaluator(config, make_engine(config.policy), KindTable())
    review = admission_review(runtime)
    review["request"]["namespace"] = None
    request = AdmissionReview.model_validate(review).request
    result = await evaluator.evaluate(request, verdicts)
    messages = [v.message for v in result.violations if v.rule == "no_trust_rule"]
    assert messages and 'in namespace ""' in messages[0]
