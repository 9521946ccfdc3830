"""The model facts: what guard established about one model, as policies read it.

This is the typed twin of ``attestations/model-facts/v1/schema.json`` (the contract with the
Rego policy library). JSON keys are camelCase (``parameterCount``, ``predicateType``...): dump with
``facts.to_json()`` / ``facts.model_dump(by_alias=True, mode="json")``. Every value here comes from
a verified source (a verified signature or a verified, subject-bound, schema-valid attestation);
an attestation that failed any check contributes nothing but its ``invalid`` status and reason.

Absent knowledge is ``null`` (never a guessed default): a dataset whose ``personalData`` is
``null`` has not been declared either way, and a policy that must be sure denies it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

FACTS_SCHEMA_ID = "https://guard.cnai.dev/model-facts/v1"

SubjectKind = Literal["directory", "oci"]
SignerMethod = Literal["key", "certificate", "keyless"]
DatasetRelation = Literal["trainedOn", "fineTunedOn", "evaluatedOn"]
AttestationStatus = Literal["present", "missing", "invalid"]


class FactsModel(BaseModel):
    """Base of the facts models: frozen, unknown keys refused, camelCase JSON keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class FactsSubject(FactsModel):
    """The model the facts are about: a directory (OMS subject digest) or an OCI manifest."""

    name: str
    digest: dict[str, str]  # {"sha256": hex}
    kind: SubjectKind


class FactsSigner(FactsModel):
    """A verified signer (see guard.signing.SignerInfo)."""

    method: SignerMethod
    identity: str
    issuer: str | None = None


class ModelInfo(FactsModel):
    """What the model is. Every field is null when no verified source states it."""

    name: str | None = None
    version: str | None = None
    architecture: str | None = None
    parameter_count: int | None = Field(default=None, ge=0)
    precision: str | None = None  # normalized: fp64 fp32 tf32 fp16 bf16 fp8 int8 int4 nf4 ...
    quantization: str | None = None
    format: str | None = None
    task: str | None = None


class Approval(FactsModel):
    by: str
    at: datetime


class DatasetFacts(FactsModel):
    """One dataset the model was trained, fine-tuned or evaluated on."""

    name: str
    uri: str | None = None
    digests: dict[str, str] = Field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    relation: DatasetRelation = "trainedOn"
    source: str | None = None
    collection_method: str | None = None
    personal_data: bool | None = None
    sensitive_data: bool | None = None
    consent_basis: str | None = None
    approved: bool = False
    approval: Approval | None = None


class ProvenanceFacts(FactsModel):
    builder: str | None = None
    source_repository: str | None = None
    source_revision: str | None = None
    build_type: str | None = None


class EnergyFacts(FactsModel):
    training_k_wh: float | None = Field(default=None, ge=0, alias="trainingKWh")
    co2e_kg: float | None = Field(default=None, ge=0, alias="co2eKg")


class AttestationFacts(FactsModel):
    """The outcome for one attestation kind or one attestation file / referrer."""

    predicate_type: str
    name: str  # sbom | spdx | provenance | datasets | or the predicate type URI
    status: AttestationStatus
    reason: str | None = None
    signer: FactsSigner | None = None
    source: str | None = None  # the file or referrer it came from


class PackagingFacts(FactsModel):
    """How an OCI artifact was packed, as its manifest and config say (``guard.oci.packaging``):
    the packer's own records, metadata only. ``signed``: a verified signature covered the
    manifest digest (so these annotations and the config digest); false under a ``files``
    signature, which covers the files only."""

    kind: str  # modelpack | cnai | kitops | other
    tool: str | None = None  # modctl | kitops
    modelfile: str | None = None  # org.cncf.modctl.modelfile
    kitfile: dict[str, Any] | None = None  # ml.kitops.modelkit.kitfile (JSON)
    diff_ids: tuple[str, ...] | None = None  # config modelfs.diffIds (or diff_ids); null when not read
    signed: bool = False
    notes: tuple[str, ...] = ()


class ModelFacts(FactsModel):
    """The facts document (``attestations/model-facts/v1``)."""

    subject: FactsSubject
    signers: tuple[FactsSigner, ...] = ()
    licenses: tuple[str, ...] = ()
    model: ModelInfo = Field(default_factory=ModelInfo)
    datasets: tuple[DatasetFacts, ...] = ()
    provenance: ProvenanceFacts = Field(default_factory=ProvenanceFacts)
    energy: EnergyFacts = Field(default_factory=EnergyFacts)
    attestations: tuple[AttestationFacts, ...] = ()
    packaging: PackagingFacts | None = None  # OCI artifacts only

    def to_json(self) -> dict[str, Any]:
        """The JSON document policies read (camelCase keys, datetimes as RFC 3339 strings)."""
        doc = self.model_dump(by_alias=True, mode="json")
        if doc.get("packaging") is None:  # directories: the key is left out, as before
            doc.pop("packaging", None)
        return doc
