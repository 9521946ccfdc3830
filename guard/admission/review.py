"""AdmissionReview v1, typed at the wire edge.

``parse_review`` turns a request body into an ``AdmissionReview`` or raises
``MalformedReviewError`` saying which field is wrong; a malformed review is never allowed.
Responses are serialized with the camelCase names Kubernetes expects and no null fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from guard.errors import UsageError
from guard.untrusted import may_nest_deeper, nesting_depth

API_VERSION = "admission.k8s.io/v1"
# Kubernetes objects nest about 20 levels (a JobSet's pod template's affinity terms); the review
# wraps them in 2 more. pydantic-core stops near 200 levels, but the policy engine's JSON reader
# stops at 128 and every walker of the object recurses: a deeper body is refused here, a 400
# saying so, before anything reads it.
MAX_REVIEW_DEPTH = 100


class MalformedReviewError(UsageError):
    """The body is not an AdmissionReview v1 request guard can answer."""


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class GroupVersionKind(_Wire):
    group: str = ""
    version: str
    kind: str = Field(min_length=1)


class GroupVersionResource(_Wire):
    group: str = ""
    version: str
    resource: str = Field(min_length=1)


class UserInfo(_Wire):
    username: str | None = None
    uid: str | None = None
    groups: tuple[str, ...] = ()


class AdmissionRequest(_Wire):
    uid: str = Field(min_length=1, max_length=256)
    kind: GroupVersionKind
    resource: GroupVersionResource
    sub_resource: str | None = None
    request_kind: GroupVersionKind | None = None
    name: str | None = None
    namespace: str | None = None
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    user_info: UserInfo = UserInfo()
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = None
    dry_run: bool = False


class AdmissionReview(_Wire):
    api_version: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class Status(_Wire):
    code: int
    message: str
    reason: str | None = None


class AdmissionResponse(_Wire):
    uid: str
    allowed: bool
    status: Status | None = None
    warnings: tuple[str, ...] | None = None
    audit_annotations: dict[str, str] | None = None


class AdmissionReviewResponse(_Wire):
    api_version: str = API_VERSION
    kind: str = "AdmissionReview"
    response: AdmissionResponse

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def parse_review(body: bytes) -> AdmissionReview:
    """Parse and validate a request body; raise MalformedReviewError naming every bad field."""
    if not body.strip():
        raise MalformedReviewError("expected an AdmissionReview v1 JSON body, found an empty body")
    if may_nest_deeper(body, MAX_REVIEW_DEPTH):
        depth = nesting_depth(body)
        if depth > MAX_REVIEW_DEPTH:
            raise MalformedReviewError(
                f"expected an AdmissionReview nested at most {MAX_REVIEW_DEPTH} levels deep, "
                f"found {depth} levels"
            )
    try:
        return AdmissionReview.model_validate_json(body)
    except ValidationError as err:
        problems = []
        for e in err.errors()[:5]:
            loc = ".".join(str(part) for part in e["loc"]) or "(body)"
            problems.append(f"{loc}: {e['msg']}")
        raise MalformedReviewError(
            "expected an AdmissionReview v1 (apiVersion admission.k8s.io/v1) with a request; "
            + "; ".join(problems)
        ) from err
