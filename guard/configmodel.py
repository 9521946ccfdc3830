"""The base of guard's config models: camelCase keys, and the deprecated spellings they replace.

guard's config file is camelCase, as its JSON output, the chart's values and the Kubernetes
objects beside it are: ``caFile``, ``timeoutSeconds``, ``ociLayout``. The key is the field name
joined mechanically (``to_camel``; acronyms are words: ``insecureSkipTlsVerify``, ``memoryGib``),
except CO2e, spelled as in guard's JSON output (``budgetKgCO2e``).

The snake_case field names (``ca_file``) and the older names of a few keys (``public_key``,
``subject``) still load from a config document, each with a warning that names its path and the
key to write (``camel_document``, run by ``guard.config.parse_config`` before validation). Two
spellings of one key in one mapping are an error, even with the same value. Keys that are data
(authority and tenant names, GPU products, MIG profiles, regions, labels, policy names) are never
renamed: only the keys of a model's own fields are.

Python code builds the models by field name (``CacheSettings(ttl_seconds=...)``) without a
warning; ``model_dump()`` keeps the field names (the trust-config hash and the policy input are
built from them), ``model_dump(by_alias=True)`` writes the file's spelling.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from guard.errors import ConfigError

log = logging.getLogger("guard.config")


def _is_model(annotation: Any) -> TypeGuard[type[ConfigModel]]:
    return isinstance(annotation, type) and issubclass(annotation, ConfigModel)


def config_key(name: str) -> str:
    """The config file's key for a field: ``ca_file`` -> ``caFile``, ``used_kg_co2e`` -> ``usedKgCO2e``."""
    return to_camel(name).replace("Co2E", "CO2e")


def _deprecated_spellings(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """The JSON Schema (the chart's values.schema.json) still accepts the deprecated spellings,
    marked ``deprecated``: a chart upgrade must not reject values that load."""
    if not _is_model(cls):
        return
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    for key, olds in old_spellings(cls).items():
        if key not in properties:
            continue
        for old in olds:
            deprecated = {"deprecated": True, "description": f"Deprecated: write {key}."}
            properties[old] = {**properties[key], **deprecated}
        if key in required:
            required.remove(key)
            schema.setdefault("allOf", []).append({"oneOf": [{"required": [s]} for s in (key, *olds)]})
    if "required" in schema and not required:
        del schema["required"]


class ConfigModel(BaseModel):
    """Base of every config model: immutable, camelCase keys, and unknown keys are errors (a
    typo never passes, in either spelling)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=config_key,
        populate_by_name=True,  # Python code builds models by field name (the mypy plugin reads this)
        json_schema_extra=_deprecated_spellings,
        defer_build=True,
    )
    # Older names of keys beyond their casing: old spelling -> field name (``public_key`` -> ``key``).
    renamed: ClassVar[Mapping[str, str]] = {}


@cache
def old_spellings(model: type[ConfigModel]) -> dict[str, tuple[str, ...]]:
    """Per config key of ``model``, its deprecated spellings (snake_case, then older names)."""
    out: dict[str, list[str]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        out[key] = [name] if name != key else []
    for old, name in model.renamed.items():
        field = model.model_fields[name]
        key = field.alias or name
        if old not in out[key]:
            out[key].append(old)
    return {key: tuple(olds) for key, olds in out.items() if olds}


@cache
def _spelling_map(model: type[ConfigModel]) -> dict[str, str]:
    spellings = {field.alias or name: field.alias or name for name, field in model.model_fields.items()}
    for key, olds in old_spellings(model).items():
        spellings.update(dict.fromkeys(olds, key))
    return spellings


def _models(annotation: Any) -> list[type[ConfigModel]]:
    return [a for a in get_args(annotation) if _is_model(a)]


def _pick(models: list[type[ConfigModel]], value: Mapping[Any, Any]) -> type[ConfigModel] | None:
    """The member of a union of models ``value`` is meant for: the only one, or the one whose
    ``kind`` literal it names (the discriminated unions of authorities and policy engines)."""
    if len(models) == 1:
        return models[0]
    for model in models:
        kind = model.model_fields.get("kind")
        literal = kind.annotation if kind is not None else None
        if get_origin(literal) is Literal and value.get("kind") in get_args(literal):
            return model
    return None


class _Walk:
    def __init__(self, source: str) -> None:
        self.source = source

    def value(self, value: Any, annotation: Any, written: str, new: str) -> Any:
        origin = get_origin(annotation)
        if origin is Annotated:
            return self.value(value, get_args(annotation)[0], written, new)
        if _is_model(annotation):
            return self.mapping(value, annotation, written, new)
        if origin in (Union, types.UnionType):
            models = _models(annotation)
            if models and isinstance(value, Mapping):
                model = _pick(models, value)
                return self.mapping(value, model, written, new) if model else value
            for member in get_args(annotation):
                if member is not type(None) and not _is_model(member):
                    value = self.value(value, member, written, new)
            return value
        if origin in (tuple, list) and isinstance(value, list | tuple):
            item = get_args(annotation)[0] if get_args(annotation) else Any
            return [self.value(v, item, f"{written}.{i}", f"{new}.{i}") for i, v in enumerate(value)]
        if origin is dict and isinstance(value, Mapping):
            item = get_args(annotation)[1]
            # the keys are data (names of authorities, products, regions...): never renamed
            return {k: self.value(v, item, f"{written}.{k}", f"{new}.{k}") for k, v in value.items()}
        return value

    def mapping(self, data: Any, model: type[ConfigModel], written: str, new: str) -> Any:
        if not isinstance(data, Mapping):
            return data
        spellings = _spelling_map(model)
        found: dict[str, list[str]] = {}
        for key in data:
            if isinstance(key, str) and key in spellings:
                found.setdefault(spellings[key], []).append(key)
        out: dict[Any, Any] = {}
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        for key, value in data.items():
            target = spellings.get(key) if isinstance(key, str) else None
            if target is None:
                out[key] = value  # unknown: pydantic refuses it with its path
                continue
            if len(found[target]) > 1:
                raise ConfigError(f"{self.source}: {written or '(root)'}: {_twice(target, found[target])}")
            if key != target:
                why = "guard's config keys are camelCase" if config_key(key) == target else "the same meaning"
                log.warning(
                    "%s: %s is a deprecated spelling; write %s (%s)",
                    self.source,
                    _join(written, key),
                    _join(new, target),
                    why,
                )
            annotation = fields[target].annotation
            out[target] = self.value(value, annotation, _join(written, key), _join(new, target))
        return out


def _twice(key: str, given: list[str]) -> str:
    olds = [g for g in given if g != key]
    what = "is its deprecated spelling" if len(olds) == 1 else "are its deprecated spellings"
    found = " and ".join(given)
    return f"expected the key {key} once, found {found} ({' and '.join(olds)} {what}); give {key} only"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def camel_document(data: Any, model: type[ConfigModel], source: str) -> Any:
    """``data`` with every deprecated key spelling replaced by its camelCase key, each with a
    warning naming its path; :class:`ConfigError` when one mapping spells one key twice."""
    return _Walk(source).mapping(data, model, "", "")
