"""The admission verifier keeps one registry store per repository, shared by its worker threads,
and a bounded number of them. Any repository a trust rule's glob matches can be named in a pod,
so a stream of pods naming new repositories must not grow the webhook without end (it would be
killed, and with it every admission of the cluster)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import guard.admission.verifier as verifier_module
from guard.admission.verifier import OciReferenceVerifier, oci_reference
from guard.config import parse_config
from guard.errors import NotFoundError
from guard.testing.admission_registry import publish_models

pytestmark = pytest.mark.registry


def test_the_stores_are_bounded(registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "STORES_KEPT", 8, raising=False)
    models = publish_models(registry.host, tmp_path / "models", prefix="verifier-stores")
    verifier = OciReferenceVerifier(parse_config(models.config()))
    assert verifier.resolve(models.signed) == models.signed_digest
    prefix = models.signed.rsplit("/", 2)[0]
    for i in range(40):  # repositories nobody pushed: each costs a store and a 404
        with pytest.raises(NotFoundError):
            verifier.resolve(f"{prefix}/flood-{i}:v1")
        assert len(verifier._stores) <= 8
    # a repository whose store was dropped is opened again, and resolves as before
    assert verifier.resolve(models.signed) == models.signed_digest
    assert len(verifier._stores) <= 8


def test_the_worker_threads_share_a_repository_s_store(registry: Any, tmp_path: Path) -> None:
    models = publish_models(registry.host, tmp_path / "models", prefix="verifier-shared")
    verifier = OciReferenceVerifier(parse_config(models.config()))
    reference = oci_reference(models.signed)
    with ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: verifier._store(reference)[0], range(32)))
        digests = list(pool.map(lambda _: verifier.resolve(models.signed), range(32)))
    assert all(store is stores[0] for store in stores)  # one client: one token, one probe
    assert set(digests) == {models.signed_digest}
    assert len(verifier._stores) == 1


def test_old_answers_of_registry_hosts_are_forgotten_when_there_are_many(
    registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier_module, "ANSWERS_KEPT", 100, raising=False)
    now = [1000.0]
    models = publish_models(registry.host, tmp_path / "models", prefix="verifier-answers")
    config = parse_config(models.config())
    window = config.admission.deadline_seconds  # what the pipeline asks answered_recently about
    verifier = OciReferenceVerifier(config, clock=lambda: now[0])
    verifier._answered_by("kept.example")()
    for i in range(150):
        now[0] += 0.01
        verifier._answered_by(f"old-{i}.example")()
    assert verifier.answered_recently("kept.example/m:v1", window)  # within the window: kept
    now[0] += window + 1  # every answer so far is older than the window
    for i in range(120):
        verifier._answered_by(f"new-{i}.example")()
    assert len(verifier._answers) <= 120
    assert not verifier.answered_recently("old-3.example/m:v1", window)  # forgotten: too old anyway
    assert verifier.answered_recently("new-0.example/m:v1", window)
