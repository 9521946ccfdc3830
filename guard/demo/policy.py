"""The policy section of ``guard demo``: sample workloads against the Rego library, with reasons."""

from __future__ import annotations

import json

from rich.markup import escape

from guard.demo.context import DemoContext, DemoFailed
from guard.policy.examples import SAMPLES, Mutation, example_input
from guard.policy.library import load_library

# (title, policy and case in guard.policy.examples.SAMPLES, or None for the compliant base, allowed?)
SCENARIOS: list[tuple[str, tuple[str, str] | None, bool]] = [
    ("llama-3-8b on one H100, signed by team-a's CI, all attestations", None, True),
    ("a 70B model in bf16 on one 80 GiB H100", ("gpu.fit", "model_exceeds_gpu_memory"), False),
    ("team-a pulls team-b's model", ("tenancy.registries", "cross_tenant_reference"), False),
    (
        "a model fine-tuned on data holding personal data",
        ("provenance.personal_data", "personal_data_not_allowed"),
        False,
    ),
    (
        "a time-sliced GPU on a pool shared with other tenants",
        ("gpu.sharing", "shared_gpu_cross_tenant"),
        False,
    ),
    ("8 H100s for 2000 hours against the carbon budget", ("carbon.budget", "carbon_budget_exceeded"), False),
]


def _mutation(policy: str, case: str) -> Mutation:
    allowed, denied = SAMPLES[policy]
    return {**allowed, **denied}[case]


def step_policies(ctx: DemoContext) -> None:
    """Evaluate sample workloads against the library: each decision with its reasons."""
    ctx.title("Admission policies: sample workloads against the Rego library")
    library = load_library()
    bundles = sorted({p.name.split(".")[0] for p in library.policies})
    ctx.say(
        f"{len(library.policies)} policies in {len(bundles)} bundles ({', '.join(bundles)}), "
        "evaluated in-process (regorus)"
    )
    inputs = ctx.path("policy-inputs")
    inputs.mkdir(exist_ok=True)
    for i, (title, ref, expect_allowed) in enumerate(SCENARIOS, start=1):
        document = example_input(_mutation(*ref) if ref else None)
        path = inputs / f"workload-{i}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        ctx.console.print()
        ctx.console.print(f"[bold]{i}. {escape(title)}[/]")
        try:
            ctx.guard(
                "policy", "eval", "--input", f"policy-inputs/{path.name}", expect=0 if expect_allowed else 1
            )
        except DemoFailed as err:
            raise DemoFailed(
                f"workload {i} ({title}): expected {'allowed' if expect_allowed else 'denied'}: {err}"
            ) from err
        if expect_allowed:
            ctx.ok("allowed (exit 0)")
        else:
            ctx.refused("denied (exit 1)")
