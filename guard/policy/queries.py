"""Which queries the embedded engine sends for each policy.

regorus evaluates each ``eval_rule`` afresh: a helper rule that both ``deny`` and ``warn`` of a
policy read is computed twice when they are queried one by one. For such a policy (``gpu.fit``:
the GPUs and memory of every container; ``carbon.budget``: the estimate), a generated rule in its
package gathers both sets, so one query computes the helpers once: measured with regorus 0.13
(benchmarks/policy_eval.py), ``gpu.fit`` 143 -> 98 us and ``carbon.budget`` 62 -> 41 us on typical
AI pods. The generated rule is one more reference, which a pod the sets do not apply to pays
(~5-10 us each on a plain pod) and which policies sharing one or two cheap helpers did not win
back (``supply_chain.signature`` 34 -> 39 us): only a policy sharing ``MIN_SHARED`` helpers or more
is asked once. The whole library: AI pods p50 -10..-18% (min -9%), plain pods +3..+15% (min +4..9%).

Which helpers a rule reads is found in the module's text: a top-level rule runs from its head at
the start of a line to the next one; a helper is read where its name appears in a body, directly
or through another helper. A name that only looks like a read (in a string, a comment) can only
make a policy use the combined query, which gives the same sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from guard.policy.library import Policy

COMBINED_RULE = "guard_engine_decisions"
_HEAD = re.compile(r"^(?:default\s+)?([a-z_][A-Za-z0-9_]*)\b", re.MULTILINE)
_KEYWORDS = {"package", "import", "default", "deny", "warn", "else"}
_FUNCTION_HEAD = re.compile(r"^([a-z_][A-Za-z0-9_]*)\(", re.MULTILINE)


def _bodies(text: str) -> dict[str, str]:
    """Top-level rule name -> the text of all its definitions."""
    heads = list(_HEAD.finditer(text))
    out: dict[str, str] = {}
    for here, after in zip(heads, [*heads[1:], None], strict=True):
        end = after.start() if after else len(text)
        name = here.group(1)
        if name not in ("package", "import"):
            out[name] = out.get(name, "") + text[here.end() : end]
    return out


def _reads(name: str, bodies: dict[str, str]) -> set[str]:
    """The helpers ``name`` reads, directly or through other helpers."""
    helpers = [h for h in bodies if h not in _KEYWORDS]
    seen: set[str] = set()
    pending = [name]
    while pending:
        body = bodies.get(pending.pop(), "")
        for helper in helpers:
            if helper not in seen and re.search(rf"\b{helper}\b", body):
                seen.add(helper)
                pending.append(helper)
    return seen


def shared_helpers(policy: Policy) -> set[str]:
    """The helper rules of ``policy`` that both ``deny`` and ``warn`` read and that read the input
    (constants and functions are not computed ahead: nothing to share)."""
    if set(policy.rules) != {"deny", "warn"}:
        return set()
    text = policy.file.text
    bodies = _bodies(text)
    functions = set(_FUNCTION_HEAD.findall(text))
    shared = _reads("deny", bodies) & _reads("warn", bodies)
    return {
        h
        for h in shared - functions
        if re.search(r"\binput\b", bodies[h])
        or any(re.search(r"\binput\b", bodies[r]) for r in _reads(h, bodies))
    }


def combined_module(policy: Policy) -> tuple[str, str]:
    """The generated module (name, text) adding ``COMBINED_RULE`` to the policy's package."""
    text = f'package {policy.package}\n\n{COMBINED_RULE} := {{"deny": deny, "warn": warn}}\n'
    return f"<guard-engine>/{policy.name}.rego", text


# fewer shared helpers than this: two queries (each combined query costs a plain pod ~5 us)
MIN_SHARED = 3


def plan(policies: Sequence[Policy]) -> list[tuple[Policy, bool]]:
    """Each policy, and whether it is evaluated with one combined query."""
    return [(p, len(shared_helpers(p)) >= MIN_SHARED) for p in policies]
