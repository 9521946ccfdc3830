"""The policy step of ``guard demo``: sample workloads against the Rego library, with reasons."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.markup import escape

from guard.policy.embedded import EmbeddedEngine
from guard.policy.examples import SAMPLES, Mutation, example_input
from guard.policy.library import load_library
from guard.policy.settings import PolicySettings

if TYPE_CHECKING:
    from guard.demo import DemoContext

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
    """Evaluate sample workloads against the library and print each decision with its reasons."""
    from guard.demo import DemoFailed  # noqa: PLC0415

    ctx.title("Admission policies: sample workloads against the Rego library")
    library = load_library()
    engine = EmbeddedEngine(library, PolicySettings().enforcement_for)
    bundles = sorted({p.name.split(".")[0] for p in library.policies})
    ctx.console.print(
        f"{len(library.policies)} policies in {len(bundles)} bundles ({', '.join(bundles)}) "
        f"from {library.root}, evaluated in-process (regorus)"
    )
    inputs = ctx.workdir / "policy-inputs"
    inputs.mkdir(exist_ok=True)
    for i, (title, ref, expect_allowed) in enumerate(SCENARIOS, start=1):
        document = example_input(_mutation(*ref) if ref else None)
        path = inputs / f"workload-{i}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        ctx.console.print()
        ctx.console.print(f"[bold]{i}. {escape(title)}[/]")
        ctx.command("policy", "eval", "--input", str(path))
        decision = engine.evaluate_sync(document)
        for v in decision.violations:
            mark = "[red]deny[/]" if v.enforcement == "deny" else f"[yellow]{v.enforcement}[/]"
            reason = escape(f"[{v.severity}] {v.policy}/{v.rule}: {v.message}")
            ctx.console.print(f"   {mark} {reason}")
            ctx.console.print(f"        [dim]controls: {escape(', '.join(v.controls))}[/]")
        if decision.allowed:
            ctx.ok(f"allowed ({len(decision.policies)} policies, {len(decision.warnings)} warnings)")
        else:
            ctx.refused(f"denied by {len(decision.denials)} violation(s)")
        if decision.allowed != expect_allowed:
            raise DemoFailed(f"workload {i} ({title}): expected {'allowed' if expect_allowed else 'denied'}")
