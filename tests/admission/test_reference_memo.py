"""An object's references are extracted once for the objects of one template digest
(``guard.admission.references.template_digest``: the object without the metadata the API server
sets for each pod): the pods of one template.

The memo is only right while extraction (``extract_references``, ``check_spellings``) reads none
of that metadata: the first test records, field by field, what extraction reads of every case
object and checks none of it is left out of the digest."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.admission import pipeline, references
from guard.admission.kinds import KindTable
from guard.admission.pipeline import AdmissionEngine
from guard.admission.references import PER_POD_METADATA, extract_references, template_digest
from guard.admission.settings import AdmissionSettings, KindSpec
from guard.admission.spellings import check_spellings, with_deprecated
from guard.testing.admission import FakePolicy, FakeRules, FakeVerifier

DATA = Path(__file__).parent.parent / "data" / "admission"
CASES = sorted(p for p in DATA.glob("*.json") if not p.name.endswith(".expected.json"))
KINDS = KindTable(())
SETTINGS = AdmissionSettings()
KEYS = with_deprecated(SETTINGS.annotations)

FieldPath = tuple[Any, ...]


class _Dict(dict[str, Any]):
    """A JSON object that records the path of every field read from it."""

    def __init__(self, data: dict[str, Any], path: FieldPath, seen: set[FieldPath]) -> None:
        super().__init__(data)
        self._path, self._seen = path, seen

    def _child(self, key: str) -> Any:
        return _wrap(dict.__getitem__(self, key), (*self._path, key), self._seen)

    def __getitem__(self, key: str) -> Any:
        self._seen.add((*self._path, key))
        return self._child(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._seen.add((*self._path, key))
        return self._child(key) if dict.__contains__(self, key) else default

    def __contains__(self, key: object) -> bool:
        self._seen.add((*self._path, key))
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        for key in dict.keys(self):
            self._seen.add((*self._path, key))
            yield key

    def keys(self) -> Any:
        return list(iter(self))

    def items(self) -> Any:
        return [(key, self[key]) for key in iter(self)]

    def values(self) -> Any:
        return [self[key] for key in iter(self)]


class _List(list[Any]):
    def __init__(self, data: list[Any], path: FieldPath, seen: set[FieldPath]) -> None:
        super().__init__(data)
        self._path, self._seen = path, seen

    def __getitem__(self, index: Any) -> Any:
        self._seen.add((*self._path, index))
        return _wrap(list.__getitem__(self, index), (*self._path, index), self._seen)

    def __iter__(self) -> Iterator[Any]:
        for index in range(list.__len__(self)):
            yield self[index]


def _wrap(value: Any, path: FieldPath, seen: set[FieldPath]) -> Any:
    if type(value) is dict:
        return _Dict(value, path, seen)
    if type(value) is list:
        return _List(value, path, seen)
    return value


def _cases() -> list[tuple[str, dict[str, Any], KindSpec]]:
    found = []
    for case in CASES:
        data = json.loads(case.read_text())
        for field in ("object", "oldObject"):
            obj = data.get(field)
            if isinstance(obj, dict):
                group = str(obj.get("apiVersion", "")).rpartition("/")[0]
                spec = KINDS.lookup(group, str(obj.get("kind", "")))
                if spec is not None:
                    found.append((f"{case.stem}:{field}", obj, spec))
    return found


CASE_OBJECTS = _cases()


def test_the_cases_cover_many_kinds() -> None:
    assert len(CASE_OBJECTS) >= 40
    assert len({spec.kind for _, _, spec in CASE_OBJECTS}) >= 10


@pytest.mark.parametrize("case", CASE_OBJECTS, ids=[c[0] for c in CASE_OBJECTS])
def test_extraction_reads_nothing_the_template_digest_leaves_out(
    case: tuple[str, dict[str, Any], KindSpec],
) -> None:
    _, obj, spec = case
    read: set[FieldPath] = set()
    watched = _wrap(copy.deepcopy(obj), (), read)
    extract_references(watched, spec, KEYS)
    check_spellings(watched, spec, SETTINGS.annotations)
    assert read, "nothing was read: the recording saw nothing"
    left_out = {
        path for path in read if len(path) >= 2 and path[0] == "metadata" and path[1] in PER_POD_METADATA
    }
    assert not left_out, f"extraction reads {sorted(left_out)}, which template_digest leaves out"


def test_the_pods_of_a_template_have_one_digest_and_other_objects_another() -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "a", "uid": "1", "creationTimestamp": "t1", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "r.example/m:v1"}]},
    }
    sibling = copy.deepcopy(pod)
    sibling["metadata"].update(name="b", uid="2", creationTimestamp="t2", resourceVersion="7")
    sibling["metadata"]["managedFields"] = [{"manager": "kcm", "time": "t2"}]
    assert template_digest(pod) == template_digest(sibling) is not None
    changes: list[Callable[[dict[str, Any]], None]] = [
        lambda o: o["metadata"]["labels"].update(app="y"),
        lambda o: o["metadata"].update(generateName="a-"),
        lambda o: o["spec"]["containers"][0].update(image="r.example/m:v2"),
        lambda o: o.update(kind="Job"),
        lambda o: o["spec"].update(nodeName="n"),
    ]
    for change in changes:
        other = copy.deepcopy(pod)
        change(other)
        assert template_digest(other) != template_digest(pod)
    assert template_digest(None) is None and template_digest({}) is None
    assert template_digest({"metadata": ["not", "an", "object"]}) is None
    big = copy.deepcopy(pod)
    big["spec"]["containers"][0]["env"] = [{"name": "X", "value": "x" * references.TEMPLATE_KEY_BYTES}]
    assert template_digest(big) is None


def _engine() -> AdmissionEngine:
    return AdmissionEngine(SETTINGS, FakeRules([]), FakeVerifier(), FakePolicy())


def _mutated(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy with one random change: to what extraction ignores (names, uids, labels, status)
    or to what it reads (an image, an annotation, a storage URI)."""
    out = copy.deepcopy(obj)
    metadata = out.setdefault("metadata", {})
    choice = rng.randrange(7)
    if choice == 0:
        metadata["name"] = f"pod-{rng.randrange(10**6)}"
    elif choice == 1:
        metadata["uid"] = f"uid-{rng.randrange(10**6)}"
        metadata["creationTimestamp"] = "2026-12-07T01:00:00Z"
    elif choice == 2:
        metadata.setdefault("labels", {})["pod-template-hash"] = str(rng.randrange(10**6))
    elif choice == 3:
        out["status"] = {"phase": "Pending"}
    elif choice == 4:
        metadata.setdefault("annotations", {})["models.guard.cnai.dev/references"] = (
            f"oci://registry.local/models/m{rng.randrange(5)}:v1"
        )
    elif choice == 5:
        metadata.setdefault("annotations", {})["models.guard.cnai.io/references"] = (
            "oci://registry.local/x:v1"
        )
    else:
        text = json.dumps(out)
        text = text.replace("llama:v1", f"llama:v{rng.randrange(3)}").replace("unsigned:v1", "unsigned:v2")
        out = json.loads(text)
    return out


def test_memoized_references_equal_fresh_ones_over_random_changes() -> None:
    engine = _engine()
    rng = random.Random(7)
    for _ in range(6):
        for _, obj, spec in CASE_OBJECTS:
            changed = _mutated(obj, rng)
            refs, spelling = engine._references_of(changed, spec, template_digest(changed))
            assert refs == extract_references(changed, spec, KEYS)
            assert spelling == check_spellings(changed, spec, SETTINGS.annotations)


def test_the_pods_of_a_template_share_their_references_and_others_do_not() -> None:
    engine = _engine()
    spec = KINDS.lookup("", "Pod")
    assert spec is not None

    def pod(name: str, image: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "uid": name, "labels": {"app": "llm"}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        }

    def references_of(obj: dict[str, Any]) -> Any:
        return engine._references_of(obj, spec, template_digest(obj))[0]

    first = references_of(pod("llm-a", "registry.local/models/llama:v1"))
    again = references_of(pod("llm-b", "registry.local/models/llama:v1"))
    other = references_of(pod("llm-c", "registry.local/models/llama:v2"))
    assert again is first  # made once
    assert [r.reference for r in other] == ["registry.local/models/llama:v2"]
    # an object without a digest (over its bound) is extracted every time, and not kept
    big = pod("llm-d", "registry.local/models/llama:v1")
    big["spec"]["containers"][0]["env"] = [{"name": "X", "value": "x" * references.TEMPLATE_KEY_BYTES}]
    kept = len(engine._references)
    assert references_of(big) == first and len(engine._references) == kept
    for i in range(pipeline._REFERENCES_KEPT + 5):
        references_of(pod(f"p{i}", f"registry.local/models/m{i}:v1"))
    assert len(engine._references) <= pipeline._REFERENCES_KEPT
