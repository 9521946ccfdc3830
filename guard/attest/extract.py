"""Read facts out of the predicates guard knows, after checking each against its spec.

One function per predicate: ``extract(name, predicate) -> Extracted``. Each first validates
(CycloneDX: kind, spec version 1.6, the library's strict schema; the others: their schema under
``attestations/``) and raises AttestationError naming the field; only a valid predicate yields
facts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from guard.attest.facts import Approval, DatasetFacts
from guard.attest.specs import FactsName, validate_against
from guard.errors import AttestationError, UsageError

DPS_DIGEST = {
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
    "SHA-1": "sha1",
    "BLAKE2b-512": "blake2b",
    "BLAKE3": "blake3",
}


@dataclass(frozen=True)
class Extracted:
    """The facts one predicate contributes (ModelInfo / provenance / energy fields by snake name)."""

    licenses: tuple[str, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[DatasetFacts, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    energy: Mapping[str, Any] = field(default_factory=dict)


# What reading a field of an unexpected shape raises: a missing key, a string where an object is
# expected, an unhashable key, a number out of range, a value the facts model refuses.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError, StopIteration)


_Reader = Callable[[Mapping[str, Any]], Extracted]


def _shape_checked(what: str) -> Callable[[_Reader], _Reader]:
    """A predicate is content its signer wrote: its schema leaves room for shapes the reader below
    does not expect (a string where an object goes, a list as a key). Whatever reading it raises
    besides guard's own errors becomes an AttestationError for that attestation, never a crash."""

    def wrap(reader: _Reader) -> _Reader:
        @functools.wraps(reader)
        def checked(predicate: Mapping[str, Any]) -> Extracted:
            if not isinstance(predicate, Mapping):
                raise AttestationError(f"{what}: expected a JSON object, found {type(predicate).__name__}")
            try:
                return reader(predicate)
            except _SHAPE_ERRORS as err:
                detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
                raise AttestationError(
                    f"{what}: a field guard reads has an unexpected shape ({type(err).__name__}: {detail})"
                ) from err

        return checked

    return wrap


def extract(name: FactsName, predicate: Mapping[str, Any]) -> Extracted:
    if name == "sbom":
        return extract_cyclonedx(predicate)
    if name == "provenance":
        return extract_slsa(predicate)
    if name == "datasets":
        return extract_dataset_provenance(predicate)
    return extract_spdx3(predicate)


# --- CycloneDX 1.6 ------------------------------------------------------------------------------


def check_cyclonedx(document: Any, *, what: str = "predicate") -> None:
    """A CycloneDX 1.6 JSON BOM, or AttestationError saying what is wrong."""
    if not isinstance(document, Mapping):
        raise AttestationError(
            f"{what}: expected a CycloneDX BOM (a JSON object), found {type(document).__name__}"
        )
    if document.get("bomFormat") != "CycloneDX":
        raise AttestationError(
            f"{what}: $.bomFormat: expected 'CycloneDX', found {document.get('bomFormat')!r} "
            "(not a CycloneDX BOM)"
        )
    if document.get("specVersion") != "1.6":
        raise AttestationError(
            f"{what}: $.specVersion: expected CycloneDX '1.6', found {document.get('specVersion')!r}"
        )
    from guard.attest.cyclonedx_schema import validate_cyclonedx  # noqa: PLC0415 (jsonschema: ~80 ms)

    try:
        validate_cyclonedx(json.dumps(document), source=what, fast=True)
    except UsageError as err:
        raise AttestationError(str(err)) from err


def _props(component: Mapping[str, Any]) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value")) for p in component.get("properties", []) if "name" in p}


def _cdx_licenses(component: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for choice in component.get("licenses", []):
        if "expression" in choice:
            out.append(str(choice["expression"]))
        elif isinstance(lic := choice.get("license"), Mapping):
            ident = lic.get("id") or (f"LicenseRef-{lic['name']}" if lic.get("name") else None)
            if ident:
                out.append(str(ident))
    return tuple(out)


def _cdx_model(document: Mapping[str, Any]) -> Mapping[str, Any]:
    main = document.get("metadata", {}).get("component")
    if isinstance(main, Mapping) and main.get("type") == "machine-learning-model":
        return main
    for component in document.get("components", []):
        if component.get("type") == "machine-learning-model":
            return component  # type: ignore[no-any-return]
    raise AttestationError(
        "predicate: no component of type 'machine-learning-model' "
        "(expected one in $.metadata.component or $.components)"
    )


def _cdx_dataset(component: Mapping[str, Any]) -> DatasetFacts:
    props = _props(component)
    uri = next(
        (r.get("url") for r in component.get("externalReferences", []) if r.get("type") == "distribution"),
        None,
    )
    data = (component.get("data") or [{}])[0]
    uri = uri or data.get("contents", {}).get("url")
    digests = {
        DPS_DIGEST[h["alg"]]: h["content"] for h in component.get("hashes", []) if h["alg"] in DPS_DIGEST
    }
    relation = props.get("guard:dataset:relation", "trainedOn")

    def flag(key: str) -> bool | None:
        value = props.get(f"guard:dataset:{key}")
        return None if value is None else value == "true"

    sensitive = flag("sensitiveData")
    if sensitive is None and data.get("sensitiveData"):
        sensitive = True
    return DatasetFacts(
        name=component["name"],
        uri=uri,
        digests=digests,
        licenses=_cdx_licenses(component),
        relation=relation if relation in ("trainedOn", "fineTunedOn", "evaluatedOn") else "trainedOn",
        source=props.get("guard:dataset:source"),
        collection_method=props.get("guard:dataset:collectionMethod"),
        personal_data=flag("personalData"),
        sensitive_data=sensitive,
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@_shape_checked("CycloneDX predicate")
def extract_cyclonedx(predicate: Mapping[str, Any]) -> Extracted:
    check_cyclonedx(predicate)
    model = _cdx_model(predicate)
    props = _props(model)
    params = model.get("modelCard", {}).get("modelParameters", {})
    info = {
        "name": model.get("name"),
        "version": model.get("version"),
        "architecture": params.get("modelArchitecture"),
        "task": params.get("task"),
        "parameter_count": _int(props.get("guard:model:parameterCount")),
        "precision": props.get("guard:model:precision"),
        "quantization": props.get("guard:model:quantization"),
        "format": props.get("guard:model:format"),
    }
    datasets = tuple(_cdx_dataset(c) for c in predicate.get("components", []) if c.get("type") == "data")
    energy: dict[str, Any] = {}
    env = model.get("modelCard", {}).get("considerations", {}).get("environmentalConsiderations", {})
    training = [
        e for e in env.get("energyConsumptions", []) if e.get("activity") in ("training", "fine-tuning")
    ]
    if training:
        energy["training_k_wh"] = sum(float(e["activityEnergyCost"]["value"]) for e in training)
        co2 = [e["co2CostEquivalent"]["value"] for e in training if "co2CostEquivalent" in e]
        if co2:
            energy["co2e_kg"] = sum(float(v) for v in co2) * 1000.0
    for prop in env.get("properties", []):
        if prop.get("name") == "guard:energy:trainingCo2eKg":
            energy.setdefault("co2e_kg", float(prop["value"]))
    return Extracted(
        licenses=_cdx_licenses(model),
        model={k: v for k, v in info.items() if v is not None},
        datasets=datasets,
        energy=energy,
    )


# --- SLSA provenance v1 ---------------------------------------------------------------------------


def _split_source(uri: str) -> tuple[str, str | None]:
    """``git+https://host/repo@refs/heads/main`` -> (``git+https://host/repo``, ``refs/heads/main``)."""
    head, sep, ref = uri.rpartition("@")
    if sep and "/" in head and "://" in head:
        return head, ref
    return uri, None


@_shape_checked("SLSA provenance predicate")
def extract_slsa(predicate: Mapping[str, Any]) -> Extracted:
    validate_against("slsa-provenance/v1", predicate, what="SLSA provenance predicate")
    build = predicate["buildDefinition"]
    repo = revision = None
    source = build.get("externalParameters", {}).get("source")
    candidates: list[Any] = [source] if source else []
    candidates += [
        d for d in build.get("resolvedDependencies", []) if str(d.get("uri", "")).startswith("git+")
    ]
    for candidate in candidates:
        uri = (
            candidate
            if isinstance(candidate, str)
            else candidate.get("uri")
            if isinstance(candidate, Mapping)
            else None
        )
        if not isinstance(uri, str):
            continue
        repo, ref = _split_source(uri)
        digest = candidate.get("digest", {}) if isinstance(candidate, Mapping) else {}
        revision = digest.get("gitCommit") or digest.get("sha1") or ref
        break
    return Extracted(
        provenance={
            "builder": predicate["runDetails"]["builder"]["id"],
            "build_type": build["buildType"],
            "source_repository": repo,
            "source_revision": revision,
        }
    )


# --- guard dataset provenance v1 ------------------------------------------------------------------


@_shape_checked("dataset-provenance predicate")
def extract_dataset_provenance(predicate: Mapping[str, Any]) -> Extracted:
    validate_against("dataset-provenance/v1", predicate, what="dataset-provenance predicate")
    out = []
    for d in predicate["datasets"]:
        approval = d.get("approval")
        out.append(
            DatasetFacts(
                name=d["name"],
                uri=d["uri"],
                digests=d["digests"],
                licenses=tuple(d["licenses"]),
                relation=d["relation"],
                source=d.get("source") or d.get("issuer"),
                collection_method=d.get("collectionMethod"),
                personal_data=d["personalData"],
                sensitive_data=d["sensitiveData"],
                consent_basis=d.get("consentBasis"),
                approved=approval is not None,
                approval=Approval(by=approval["by"], at=approval["at"]) if approval else None,
            )
        )
    return Extracted(datasets=tuple(out))


# --- SPDX 3 AI / Dataset --------------------------------------------------------------------------

SPDX_RELATION = {"trainedOn": "trainedOn", "testedOn": "evaluatedOn"}
SPDX_PRESENCE = {"yes": True, "no": False}


@_shape_checked("SPDX 3 predicate")
def extract_spdx3(predicate: Mapping[str, Any]) -> Extracted:
    validate_against("spdx3-ai/v3", predicate, what="SPDX 3 predicate")
    graph = predicate["@graph"]
    by_id = {e["spdxId"]: e for e in graph if "spdxId" in e}
    rels = [e for e in graph if e.get("type") == "Relationship"]

    def licenses_of(spdx_id: str) -> tuple[str, ...]:
        out = []
        for rel in rels:
            if rel["from"] == spdx_id and rel["relationshipType"] in (
                "hasDeclaredLicense",
                "hasConcludedLicense",
            ):
                for target in rel["to"]:
                    expr = by_id.get(target, {}).get("simplelicensing_licenseExpression")
                    if isinstance(expr, str) and expr not in out:
                        out.append(expr)
        return tuple(out)

    model = next(e for e in graph if e.get("type") == "ai_AIPackage")
    datasets = []
    for rel in rels:
        if rel["from"] != model["spdxId"] or rel["relationshipType"] not in SPDX_RELATION:
            continue
        for target in rel["to"]:
            d = by_id.get(target)
            if d is None or d.get("type") != "dataset_DatasetPackage":
                raise AttestationError(
                    f"SPDX 3 predicate: relationship {rel['relationshipType']} points at "
                    f"{target!r}, expected a dataset_DatasetPackage in @graph"
                )
            digests = {
                h["algorithm"]: h["hashValue"]
                for h in d.get("verifiedUsing", [])
                if h.get("type") == "Hash" and h.get("algorithm") in ("sha256", "sha384", "sha512")
            }
            datasets.append(
                DatasetFacts(
                    name=d["name"],
                    uri=d.get("software_downloadLocation"),
                    digests=digests,
                    licenses=licenses_of(target),
                    relation=SPDX_RELATION[rel["relationshipType"]],
                    collection_method=d.get("dataset_dataCollectionProcess"),
                    personal_data=SPDX_PRESENCE.get(str(d.get("dataset_hasSensitivePersonalInformation"))),
                )
            )
    energy: dict[str, Any] = {}
    training = model.get("ai_energyConsumption", {}).get("ai_trainingEnergyConsumption", [])
    kwh = [float(e["ai_energyQuantity"]) for e in training if e.get("ai_energyUnit") == "kilowattHour"]
    if kwh:
        energy["training_k_wh"] = sum(kwh)
    types = model.get("ai_typeOfModel") or []
    domains = model.get("ai_domain") or []
    info = {
        "name": model["name"],
        "version": model.get("software_packageVersion"),
        "architecture": types[0] if types else None,
        "task": domains[0] if domains else None,
    }
    return Extracted(
        licenses=licenses_of(model["spdxId"]),
        model={k: v for k, v in info.items() if v},
        datasets=tuple(datasets),
        energy=energy,
    )
