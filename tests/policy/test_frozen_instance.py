"""``frozen_instance`` builds what the dataclass's own ``__init__`` builds (the violations of every
admission request are made with it)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from guard.admission.ports import Violation as AdmissionViolation
from guard.policy.decision import Violation, decide, frozen_instance


def _fields() -> list[tuple[type, dict[str, object]]]:
    return [
        (
            Violation,
            {
                "policy": "gpu.fit",
                "rule": "fit",
                "message": "too big",
                "severity": "high",
                "controls": ("c1",),
                "enforcement": "warn",
                "source": "deny",
                "artifact": None,
                "container": "main",
            },
        ),
        (
            AdmissionViolation,
            {
                "policy": "gpu.fit",
                "rule": "fit",
                "message": "too big",
                "severity": "high",
                "action": "dryrun",
                "artifact": "r/m@sha256:" + "a" * 64,
                "controls": (),
                "container": None,
            },
        ),
    ]


@pytest.mark.parametrize(("cls", "fields"), _fields())
def test_the_same_object_as_the_dataclass_builds(cls: type, fields: dict[str, object]) -> None:
    made: Any = frozen_instance(cls, dict(fields))
    built = cls(**fields)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert dataclasses.asdict(made) == dataclasses.asdict(built) == fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.message = "changed"


def test_decide_sets_every_field_of_its_violations() -> None:
    raw = {
        "a.p": {
            "deny": [{"rule": "r1", "message": "m1", "severity": "low", "controls": ["x"], "artifact": "i"}],
            "warn": [{"rule": "r2", "message": "m2"}],
        }
    }
    violations = decide(raw, lambda policy: "deny").violations
    names = {f.name for f in dataclasses.fields(Violation)}
    assert [set(vars(v)) for v in violations] == [names, names]
    assert violations == (
        Violation("a.p", "r1", "m1", "low", ("x",), "deny", "deny", "i", None),
        Violation("a.p", "r2", "m2", "medium", (), "warn", "warn", None, None),
    )
