"""``guard sbom``: a CycloneDX 1.6 ML-BOM for a model directory.

Built with cyclonedx-python-lib (components, hashes, licences, serialization, validation). The
library (11.x) has no object model for ``modelCard`` or ``componentData``, so those two are added
to the serialized document, which is then validated against the library's strict 1.6 JSON schema:
a document guard writes always validates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception.factory import LicenseFactoryException
from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.license import License
from cyclonedx.model.tool import Tool
from cyclonedx.output.json import JsonV1Dot6

from guard import __version__
from guard.attest.cyclonedx_schema import validate_cyclonedx
from guard.attest.modelcard import DatasetInput, ModelDescription, ModelMetadata, describe_model
from guard.attest.subject import ModelSubject, directory_subject
from guard.errors import UsageError
from guard.signing import DEFAULT_SIGNATURE_NAME, DigestCache, hash_model

MODEL_REF = "model"
PROP = "guard:"  # guard's property namespace in the CycloneDX property taxonomy sense

CDX_HASH = {
    "sha256": HashAlgorithm.SHA_256,
    "sha384": HashAlgorithm.SHA_384,
    "sha512": HashAlgorithm.SHA_512,
    "blake2b": HashAlgorithm.BLAKE2B_512,
    "blake3": HashAlgorithm.BLAKE3,
    "sha1": HashAlgorithm.SHA_1,
}


def _licenses(values: Iterable[str], what: str) -> list[License]:
    factory = LicenseFactory()
    out = []
    for value in values:
        try:
            out.append(factory.make_from_string(value))
        except LicenseFactoryException as err:
            raise UsageError(f"{what}: cannot use licence {value!r}: {err}") from err
    return out


def _hashes(digests: dict[str, str], what: str) -> list[HashType]:
    out = []
    for alg, value in sorted(digests.items()):
        if alg not in CDX_HASH:
            raise UsageError(
                f"{what}: digest algorithm {alg!r} has no CycloneDX equivalent "
                f"(expected one of {', '.join(sorted(CDX_HASH))})"
            )
        out.append(HashType(alg=CDX_HASH[alg], content=value.lower()))
    return out


def _props(prefix: str, values: dict[str, Any]) -> list[Property]:
    out = []
    for key, value in values.items():
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(Property(name=f"{PROP}{prefix}:{key}", value=text))
    return out


def _dataset_ref(index: int) -> str:
    return f"dataset-{index}"


def _dataset_component(index: int, dataset: DatasetInput) -> Component:
    refs = []
    if dataset.uri:
        refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(dataset.uri)))
    return Component(
        type=ComponentType.DATA,
        name=dataset.name,
        bom_ref=_dataset_ref(index),
        description=dataset.description,
        hashes=_hashes(dataset.digests, f"dataset {dataset.name!r}"),
        licenses=_licenses(dataset.licenses, f"dataset {dataset.name!r}"),
        external_references=refs,
        properties=_props(
            "dataset",
            {
                "relation": dataset.relation,
                "source": dataset.source,
                "collectionMethod": dataset.collection_method,
                "personalData": dataset.personal_data,
                "sensitiveData": dataset.sensitive_data,
            },
        ),
    )


def _model_component(meta: ModelMetadata, desc: ModelDescription, subject: ModelSubject) -> Component:
    assert subject.manifest is not None
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=meta.name or subject.name,
        version=meta.version,
        description=meta.description,
        bom_ref=MODEL_REF,
        supplier=OrganizationalEntity(name=meta.supplier) if meta.supplier else None,
        licenses=_licenses(meta.licenses, "model"),
        properties=[
            Property(name=f"{PROP}oms:subjectDigest", value=f"sha256:{subject.sha256}"),
            Property(name=f"{PROP}oms:hashType", value=subject.manifest.serialization.hash_type),
            *_props(
                "model",
                {
                    "parameterCount": meta.parameter_count,
                    "parameterCountSource": desc.parameter_count_source,
                    "precision": meta.precision,
                    "quantization": meta.quantization,
                    "format": meta.format,
                },
            ),
        ],
    )


def _file_components(subject: ModelSubject, model_dir: Path, cache: DigestCache | None) -> list[Component]:
    """One ``file`` component per file. A shard-serialized signature has no per-file digests:
    the files are then hashed whole, with the same hash type."""
    assert subject.manifest is not None
    serialization = subject.manifest.serialization
    manifest = subject.manifest
    if serialization.method != "files":
        manifest = hash_model(
            model_dir, replace(serialization, method="files"), cache=cache, exclude=(DEFAULT_SIGNATURE_NAME,)
        )
    alg = CDX_HASH[serialization.hash_type]
    return [
        Component(
            type=ComponentType.FILE,
            name=r.name,
            bom_ref=f"file:{r.name}",
            hashes=[HashType(alg=alg, content=r.digest)],
        )
        for r in manifest.resources
    ]


def _model_card(meta: ModelMetadata) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if meta.approach:
        params["approach"] = {"type": meta.approach}
    for key, value in (
        ("task", meta.task),
        ("architectureFamily", meta.architecture_family),
        ("modelArchitecture", meta.architecture),
    ):
        if value:
            params[key] = value
    if meta.datasets:
        params["datasets"] = [{"ref": _dataset_ref(i)} for i in range(len(meta.datasets))]
    card: dict[str, Any] = {"modelParameters": params} if params else {}
    energy = meta.energy
    if energy is not None:
        env: dict[str, Any] = {}
        if energy.training_k_wh is not None:
            consumption: dict[str, Any] = {
                "activity": "training",
                "energyProviders": [
                    {
                        "organization": {"name": energy.provider},
                        "energySource": energy.energy_source,
                        "energyProvided": {"value": energy.training_k_wh, "unit": "kWh"},
                    }
                ]
                if energy.provider
                else [],
                "activityEnergyCost": {"value": energy.training_k_wh, "unit": "kWh"},
            }
            if energy.co2e_kg is not None:
                consumption["co2CostEquivalent"] = {"value": energy.co2e_kg / 1000.0, "unit": "tCO2eq"}
            env["energyConsumptions"] = [consumption]
        elif energy.co2e_kg is not None:  # CycloneDX requires the energy cost with a CO2 figure
            env["properties"] = [{"name": f"{PROP}energy:trainingCo2eKg", "value": str(energy.co2e_kg)}]
        if env:
            card["considerations"] = {"environmentalConsiderations": env}
    return card


def _component_data(dataset: DatasetInput, index: int) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"type": "dataset", "name": dataset.name}
    if dataset.uri:
        data["contents"] = {"url": dataset.uri}
    if dataset.sensitive_data_categories:
        data["sensitiveData"] = list(dataset.sensitive_data_categories)
    if dataset.source:
        data["governance"] = {"owners": [{"organization": {"name": dataset.source}}]}
    return [data]


def build_sbom(
    model_dir: Path,
    metadata: ModelMetadata | None = None,
    *,
    subject: ModelSubject | None = None,
    cache: DigestCache | None = None,
) -> dict[str, Any]:
    """The ML-BOM of ``model_dir`` as a JSON-ready dict (validated)."""
    subject = subject or directory_subject(model_dir, cache=cache)
    desc = describe_model(model_dir, metadata)
    meta = desc.meta
    model = _model_component(meta, desc, subject)
    bom = Bom()
    bom.metadata.component = model
    bom.metadata.tools.tools.add(Tool(vendor="cnai", name="guard", version=__version__))
    datasets = [_dataset_component(i, d) for i, d in enumerate(meta.datasets)]
    files = _file_components(subject, model_dir, cache)
    for component in (*files, *datasets):
        bom.components.add(component)
    bom.register_dependency(model, [*files, *datasets])
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    # The library has no model for modelCard / componentData: add them, then validate the result.
    card = _model_card(meta)
    if card:
        document["metadata"]["component"]["modelCard"] = card
    by_ref = {c.get("bom-ref"): c for c in document.get("components", [])}
    for i, dataset in enumerate(meta.datasets):
        by_ref[_dataset_ref(i)]["data"] = _component_data(dataset, i)
    validate_cyclonedx(json.dumps(document), source="generated ML-BOM")
    return document
