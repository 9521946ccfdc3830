"""``guard attest``: sign an in-toto Statement binding a predicate to one model.

The predicate is checked before signing (a known predicate must be valid against its spec, so
guard never signs what ``guard facts`` would reject); the Statement is signed with any Signer
(key, certificate, keyless) into a Sigstore bundle v0.3 with a DSSE envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guard.attest.extract import extract
from guard.attest.specs import spec_for
from guard.attest.subject import ModelSubject
from guard.errors import AttestationError, UsageError
from guard.signing import IN_TOTO_STATEMENT_TYPE, Signer, sign_statement
from guard.textfile import read_user_text
from guard.untrusted import parse_json

log = logging.getLogger(__name__)


def load_predicate(path: Path) -> dict[str, Any]:
    """A predicate file: one JSON object."""
    text = read_user_text(path, what="predicate file", expected="a UTF-8 JSON predicate")
    data = parse_json(text, str(path), error=UsageError)  # NaN / Infinity / deep nesting refused
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object as predicate, found a JSON {type(data).__name__}")
    return data


def attestation_statement(
    subject: ModelSubject, predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """The in-toto Statement v1; a known predicate type must carry a valid predicate."""
    if "://" not in predicate_type:
        raise UsageError(f"--predicate-type: expected a URI, found {predicate_type!r}")
    spec = spec_for(predicate_type)
    if spec is None:
        log.warning(
            "predicate type %s is not one guard reads: `guard facts` will report it as invalid",
            predicate_type,
        )
    else:
        try:
            extract(spec.name, predicate)
        except AttestationError as err:
            raise UsageError(f"refusing to sign an invalid {spec.name} predicate: {err}") from err
    return {
        "_type": IN_TOTO_STATEMENT_TYPE,
        "subject": subject.as_statement_subject(),
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def sign_attestation(
    subject: ModelSubject, predicate_type: str, predicate: Mapping[str, Any], signer: Signer
) -> bytes:
    """The Sigstore bundle (JSON bytes) of the attestation."""
    return sign_statement(attestation_statement(subject, predicate_type, predicate), signer)
