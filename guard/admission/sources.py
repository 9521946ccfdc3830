"""Model sources declared outside image fields: what serving runtimes and initializers read.

A model reaches a pod in more ways than ``image`` and ``storageUri``. This module finds the ones
that follow a published convention, so each becomes a reference: an OCI one is verified like any
image, every other one reaches the policies as an unverified model source, with the field path it
was found at.

- Container env ``STORAGE_URI`` (KServe, Kubeflow Trainer initializers), ``MODELKIT_REF``
  (KitOps init container, an OCI reference), ``MODEL_ID`` / ``HF_MODEL_ID`` (TGI, KServe's
  Hugging Face server: a Hub repository id when it has no scheme), ``NIM_MODEL_PATH`` (NVIDIA
  NIM's model-free container: a URI or a local directory). A value taken from a ConfigMap
  or Secret (``valueFrom``) cannot be read at admission: it is the source ``configmap://<name>/<key>``
  or ``secret://<name>/<key>``.
- Container command and args: ``--model``, ``--model-id``, ``--model-path``, ``--model_id``,
  ``--model-dir``, ``--model_dir`` (vLLM, TGI, SGLang, KServe; also abbreviated, as argparse takes
  them), ``--model-repository`` / ``--model-store`` (Triton, TorchServe), ``--model_base_path``
  (TensorFlow Serving), ``--model-url`` / ``--hf-repo`` / ``-hf`` (llama.cpp), a speculative
  decoding draft model (vLLM ``--speculative-config``'s JSON ``model`` or
  ``--speculative-config.model``, ``--speculative-model``; SGLang
  ``--speculative-draft-model-path``) and ``vllm serve <model>``, also inside a shell string
  (``sh -c "vllm serve ..."``), and the first argument of a vLLM image run without ``command``
  (its entrypoint is ``vllm serve``); an argument that is a JSON object (or a flag's ``=`` one)
  is one word, never a shell string to split;
  ``$(VAR)`` is expanded from the container's env as the kubelet does, and a value still holding
  ``$`` (or a KServe ServingRuntime template, ``{{.Name}}``) is the unresolvable source
  ``unresolved://...``.
- LoRA adapters, weights loaded beside the base model: vLLM ``--lora-modules`` (``name=path``
  items or JSON objects), SGLang ``--lora-paths``, TGI ``--lora-adapters`` and env
  ``LORA_ADAPTERS`` (comma-separated); each adapter is read as a ``--model`` value.
- KServe's storage-initializer init container (image ``.../storage-initializer``): its args are
  ``<source URI> <destination>`` pairs.
- A path (``--model /data/llama``) is the volume mounted there: a PVC is ``pvc://<claim>/<path>``,
  a hostPath ``hostpath://<path>``, NFS ``nfs://<server><path>``, any other volume
  ``volume://<type>/<name>/<path>``. Image volumes and model CSI volumes are artifacts of their own,
  an emptyDir is filled by the pod's own containers (whose sources are read), and a path no volume
  covers is inside the container image (verified with it).
- CSI inline volumes of the ModelPack driver (``driver: model.csi.modelpack.org``,
  ``volumeAttributes.modelRef``: an OCI reference).
- KServe storage specs (``model.storage {key, path, parameters}``): the source
  ``kserve-storage://<key>[;<param>=<value>...]/<path>`` (parameters override where the key points,
  so they are part of the source: a prefix allowing a key does not allow overriding it).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

Kind = Literal["uri", "hf", "oci"]

MODEL_ENV: Mapping[str, Kind] = {
    "STORAGE_URI": "uri",
    "MODELKIT_REF": "oci",
    "MODEL_ID": "hf",
    "HF_MODEL_ID": "hf",
    # NVIDIA NIM (model-free): hf://, ngc://, s3://, gs://, modelscope:// or a local directory
    "NIM_MODEL_PATH": "uri",
}
MODEL_FLAGS = frozenset(
    {
        *(
            "--model",
            "--model-id",
            "--model_id",
            "--model-path",
            "--model_path",
            "--model-dir",
            "--model_dir",
        ),
        # Triton's model repository (--model-store its older spelling, TorchServe's too) and
        # TensorFlow Serving's base path: where the server loads its models from
        *("--model-repository", "--model-store", "--model_base_path", "--model-base-path"),
        "--model-url",  # llama.cpp's server: a GGUF it downloads
        # a draft model for speculative decoding: weights the server loads beside the model
        # (vLLM before --speculative-config; SGLang)
        *("--speculative-model", "--speculative-draft-model-path"),
    }
)
# vLLM's speculative decoding: a JSON object whose "model" is the draft model's weights
# (``--speculative-config '{"model": "org/draft", ...}'``), or that key alone
# (``--speculative-config.model org/draft``, as vLLM's parser takes a JSON key)
SPECULATIVE_CONFIG = "--speculative-config"
# the first characters of every flag above: any other token is skipped at once
_FLAG_STARTS = ("--model", "--lora", "-hf", "--hf", "--spec")
# llama.cpp's server: a Hugging Face repository it downloads a GGUF from (``org/model[:quant]``)
HF_REPO_FLAGS = frozenset({"--hf-repo", "-hf", "-hfr"})
# argparse takes an unambiguous abbreviation (``--model-pa`` is SGLang's ``--model-path``) and
# vLLM reads ``_`` as ``-``: a flag is compared in that form, as a prefix of the known ones.
_FLAG_FORMS = frozenset(f.replace("_", "-") for f in MODEL_FLAGS)
# LoRA adapters: weights loaded beside the base model (vLLM --lora-modules name=path or JSON
# objects, nargs "+"; SGLang --lora-paths name=path or path, nargs "*"; TGI --lora-adapters and
# env LORA_ADAPTERS, comma-separated ids or name=path)
LORA_LIST_FLAGS = frozenset({"--lora-modules", "--lora-paths"})
LORA_COMMA_FLAGS = frozenset({"--lora-adapters"})
LORA_ENV = "LORA_ADAPTERS"
MODEL_CSI_DRIVERS = frozenset({"model.csi.modelpack.org"})
STORAGE_INITIALIZER = "storage-initializer"

_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")
_HF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)?(:[A-Za-z0-9_.\-/]+)?$")
_K8S_VAR_RE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
_SHELL_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SELF_FILLED = ("image", "emptyDir")
_SHLEX_MAX = 4096


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _repository_basename(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _env(container: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    env = container.get("env")
    if not isinstance(env, list):
        return []
    return [(i, e) for i, e in enumerate(env) if isinstance(e, Mapping) and isinstance(e.get("name"), str)]


def _indirect(entry: Mapping[str, Any]) -> str:
    """The source an env var's ``valueFrom`` names (its value is not known at admission)."""
    source = entry.get("valueFrom")
    source = source if isinstance(source, Mapping) else {}
    for field, scheme in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
        ref = source.get(field)
        if isinstance(ref, Mapping):
            return f"{scheme}://{ref.get('name', '')}/{ref.get('key', '')}"
    return f"unresolved://env/{entry['name']}"


def _env_values(container: Mapping[str, Any]) -> dict[str, str]:
    """Env values the kubelet substitutes into ``$(VAR)``: literal ones; the others stay unknown."""
    values: dict[str, str] = {}
    for _, entry in _env(container):  # a name given twice: the last one wins, as in the kubelet
        value = entry.get("value")
        if isinstance(value, str) and "valueFrom" not in entry:
            values[entry["name"]] = value
        else:
            values.pop(entry["name"], None)
    return values


def _expand(text: str, env: Mapping[str, str], in_shell: bool) -> str:
    def sub(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return env.get(name, match.group(0))

    text = _K8S_VAR_RE.sub(sub, text)
    if in_shell:
        text = _SHELL_VAR_RE.sub(sub, text)
    return text


class _Pod:
    """The pod spec a container is in (``None`` outside one): its volumes, to resolve paths."""

    def __init__(self, spec: Mapping[str, Any] | None, where: str) -> None:
        volumes = spec.get("volumes") if isinstance(spec, Mapping) else None
        self.where = where
        self.volumes: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
            if isinstance(volume, Mapping) and isinstance(volume.get("name"), str):
                self.volumes.setdefault(volume["name"], (i, volume))
        self.known = isinstance(spec, Mapping)

    def resolve(self, container: Mapping[str, Any], path: str) -> str | None:
        """The model source behind an absolute ``path`` in ``container``, or None when the files
        come from something guard already checks (see the module's docstring)."""
        if not self.known:
            return None
        path = "/" + path.lstrip("/")  # //models is /models to the kernel
        mounts = container.get("volumeMounts")
        best: Mapping[str, Any] | None = None
        for mount in mounts if isinstance(mounts, list) else []:
            if not isinstance(mount, Mapping) or not isinstance(mount.get("mountPath"), str):
                continue
            base = _mount_path(mount)
            inside = path == base or path.startswith(base.rstrip("/") + "/")
            if inside and (best is None or len(base) > len(_mount_path(best))):
                best = mount
        if best is None:
            return None  # inside the container image
        found = self.volumes.get(str(best.get("name")))
        if found is None:
            return None  # the API server rejects a mount of an undeclared volume
        _, volume = found
        rest = path[len(_mount_path(best).rstrip("/")) :].lstrip("/")
        sub = next((best[k] for k in ("subPath", "subPathExpr") if isinstance(best.get(k), str)), "")
        inner = posixpath.join(sub, rest).strip("/") if sub or rest else ""
        source = _volume_source(volume, inner)
        # subPathExpr expands $(VAR) from the env: a directory guard cannot name
        return f"unresolved://{source}" if source is not None and "$" in source else source


def _mount_path(mount: Mapping[str, Any]) -> str:
    return "/" + posixpath.normpath(str(mount["mountPath"])).lstrip("/")


def _volume_source(volume: Mapping[str, Any], inner: str) -> str | None:
    suffix = f"/{inner}" if inner else ""
    if any(isinstance(volume.get(t), Mapping) for t in _SELF_FILLED):
        return None
    csi = volume.get("csi")
    if isinstance(csi, Mapping) and csi.get("driver") in MODEL_CSI_DRIVERS:
        return None  # the CSI model volume is an artifact of its own
    claim = volume.get("persistentVolumeClaim")
    if isinstance(claim, Mapping):
        return f"pvc://{claim.get('claimName', '')}{suffix}"
    host = volume.get("hostPath")
    if isinstance(host, Mapping):
        return f"hostpath://{str(host.get('path', '')).rstrip('/')}{suffix}"
    nfs = volume.get("nfs")
    if isinstance(nfs, Mapping):
        return f"nfs://{nfs.get('server', '')}{str(nfs.get('path', '')).rstrip('/')}{suffix}"
    kind = next((k for k in volume if k != "name"), "unknown")
    return f"volume://{kind}/{volume['name']}{suffix}"


def _classify(value: str, kind: Kind, container: Mapping[str, Any], pod: _Pod) -> str | None:
    """The reference a declared value names (None: nothing beyond what guard checks anyway)."""
    if "$" in value or "{{" in value:  # a variable, or a ServingRuntime template ({{.Name}})
        return f"unresolved://{value}"
    if _SCHEME_RE.match(value) or kind == "oci":
        return value
    if value.startswith("/"):
        return pod.resolve(container, posixpath.normpath(value))
    if kind == "hf" and value.isdigit():
        return None  # a number (an app's own MODEL_ID), not a Hub repository
    if kind == "hf" and _HF_ID_RE.match(value):
        return f"hf://{value}"
    return f"file://{value}"


def _json_dict(text: str, limit: int | None = _SHLEX_MAX) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None (not one, or longer than ``limit``)."""
    if (limit is not None and len(text) > limit) or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_object(item: str) -> bool:
    """Whether an argument is one JSON object (vLLM's ``--lora-modules '{"name": ...}'``), or a
    flag given one (``--speculative-config={"model": ...}``): one word, never a shell string to
    split."""
    flag, eq, value = item.partition("=")
    if eq and flag.startswith("-") and not any(c.isspace() for c in flag):
        item = value
    return _json_dict(item) is not None


def _flag_value(tokens: Sequence[tuple[str, str]], i: int, eq: str, value: str) -> tuple[str, str] | None:
    """``(location, value)`` of the flag at ``tokens[i]``: after its ``=``, else the next token
    (None when none follows)."""
    if eq:
        return tokens[i][0], value
    return tokens[i + 1] if i + 1 < len(tokens) else None


def _tokens(items: Sequence[tuple[str, str]], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(location, token)``: each command / args item, and a shell string split into words."""
    out: list[tuple[str, str]] = []
    for location, item in items:
        if any(c.isspace() for c in item.strip()) and not _json_object(item):
            try:  # shlex is slow Python: a long string (a script) is split on whitespace only
                words = shlex.split(item) if len(item) <= _SHLEX_MAX else item.split()
            except ValueError:
                words = item.split()
            out.extend((location, _expand(w, env, in_shell=True) if "$" in w else w) for w in words)
        else:
            out.append((location, _expand(item, env, in_shell=False) if "$" in item else item))
    return out


_LORA_FLAGS = tuple(sorted(LORA_LIST_FLAGS | LORA_COMMA_FLAGS))


def _lora_flag(flag: str) -> str | None:
    """The LoRA flag ``flag`` spells (``_`` as ``-``, an abbreviation as argparse takes it), or
    None."""
    form = flag.replace("_", "-")
    if len(form) <= len("--lora-"):
        return None
    return next((f for f in _LORA_FLAGS if f.startswith(form)), None)


def _adapter_path(item: str) -> str:
    """The weights of one LoRA adapter item: a JSON object's ``path``, ``name=path``'s path, or
    the item itself (a path or a Hub id)."""
    if item.startswith("{"):
        value = _json_dict(item, limit=None)
        path = value.get("path") if value is not None else None
        return path if isinstance(path, str) and path.strip() else f"unresolved://{item}"
    _name, eq, path = item.partition("=")
    return path.strip() if eq and not _SCHEME_RE.match(item) else item


def _adapter_items(value: str, comma: bool) -> list[str]:
    items = value.split(",") if comma else [value]
    return [_adapter_path(i.strip()) for i in items if i.strip()]


def _lora_sources(tokens: Sequence[tuple[str, str]], i: int) -> Iterator[tuple[str, str]]:
    """The adapters a LoRA flag at ``tokens[i]`` names (its ``=value``, or the values after it)."""
    flag, eq, value = tokens[i][1].partition("=")
    comma = _lora_flag(flag) in LORA_COMMA_FLAGS
    if eq:
        for path in _adapter_items(value, comma):
            yield tokens[i][0], path
        return
    for location, item in tokens[i + 1 : i + 2] if comma else tokens[i + 1 :]:
        if item.startswith("-"):
            return  # the next flag: nargs ends
        for path in _adapter_items(item, comma):
            yield location, path


def _speculative_config_flag(flag: str) -> bool:
    """Whether ``flag`` is ``--speculative-config`` (``_`` as ``-``, abbreviated as argparse takes
    it) or one of its keys (``--speculative-config.model``)."""
    form = flag.replace("_", "-")
    name = form.partition(".")[0]
    return len(name) >= len("--speculative-c") and SPECULATIVE_CONFIG.startswith(name)


def _speculative_config(
    flag: str, eq: str, value: str, tokens: Sequence[tuple[str, str]], i: int
) -> Iterator[tuple[str, str]]:
    """The draft model a ``--speculative-config`` at ``tokens[i]`` names: its JSON object's
    ``model`` (none for a method without a draft model, e.g. ``ngram``), or the value of
    ``--speculative-config.model``; a value guard cannot read is ``unresolved://``."""
    found = _flag_value(tokens, i, eq, value)
    if found is None:
        return
    location, value = found
    _name, dot, rest = flag.replace("_", "-").partition(".")
    key = dot + rest
    if key == ".model":
        yield location, value
        return
    if key:
        return  # another key of the config (``.num_speculative_tokens``)
    config = _json_dict(value)
    if config is None:
        yield location, f"unresolved://{value}"
        return
    model = config.get("model")
    if model is None:
        return
    yield location, model if isinstance(model, str) and model.strip() else f"unresolved://{value}"


def _argument_sources(tokens: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for i, (_, token) in enumerate(tokens):
        if not token.startswith(_FLAG_STARTS) and not token.endswith("vllm"):
            continue  # most tokens: cheap to skip (a script can hold a million)
        flag, eq, value = token.partition("=")
        if _speculative_config_flag(flag):
            yield from _speculative_config(flag, eq, value, tokens, i)
            continue
        if _lora_flag(flag) is not None:
            yield from _lora_sources(tokens, i)
            continue
        form = flag.replace("_", "-")
        if flag in HF_REPO_FLAGS or (
            form.startswith(("--model", "--spec")) and any(f.startswith(form) for f in _FLAG_FORMS)
        ):
            if (found := _flag_value(tokens, i, eq, value)) is not None:
                yield found
        elif (
            posixpath.basename(token) == "vllm"
            and i + 2 < len(tokens)
            and tokens[i + 1][1] == "serve"
            and not tokens[i + 2][1].startswith("-")
        ):
            yield tokens[i + 2]


def container_sources(
    container: Mapping[str, Any], where: str, pod_spec: Mapping[str, Any] | None, pod_where: str
) -> Iterator[tuple[str, str]]:
    """``(reference, location)`` for every model source ``container`` declares; ``where`` is the
    container's field path, ``pod_spec`` the pod spec around it (None for a container-like object
    outside one)."""
    if not (container.get("env") or container.get("command") or container.get("args")):
        return  # no env, command or args (most sidecars): nothing here can name a source
    pod = _Pod(pod_spec, pod_where)
    env = _env_values(container)
    for index, entry in _env(container):
        kind = MODEL_ENV.get(entry["name"])
        if entry["name"] == LORA_ENV:
            yield from _env_adapters(entry, f"{where}.env[{index}]", env, container, pod)
            continue
        if kind is None:
            continue
        location = f"{where}.env[{index}]"
        if "valueFrom" in entry:
            yield _indirect(entry), f"{location}.valueFrom"
            continue
        value = _text(entry.get("value"))
        if value is not None:
            ref = _classify(_expand(value, env, in_shell=False), kind, container, pod)
            if ref is not None:
                yield ref, f"{location}.value"
    items: list[tuple[str, str]] = []
    for field in ("command", "args"):
        values = container.get(field)
        for i, item in enumerate(values if isinstance(values, list) else []):
            if isinstance(item, str):
                items.append((f"{where}.{field}[{i}]", item))
    tokens = _tokens(items, env)
    sources = list(_argument_sources(tokens))
    image = _text(container.get("image")) or ""
    args = container.get("args")
    if not container.get("command") and "vllm" in _repository_basename(image) and isinstance(args, list):
        # vLLM's images run `vllm serve` (their ENTRYPOINT): the first argument is the model
        first = _text(args[0]) if args else None
        if first is not None and not first.startswith("-"):
            sources.append((f"{where}.args[0]", _expand(first, env, in_shell=False)))
    for location, value in dict.fromkeys(sources):  # a script repeating itself is read once
        if value:
            ref = _classify(value, "hf", container, pod)
            if ref is not None:
                yield ref, location
    if STORAGE_INITIALIZER in (container.get("name"), _repository_basename(image)):
        for i, item in enumerate(args if isinstance(args, list) else []):
            value = _text(item)
            if i % 2 == 0 and value is not None:
                ref = _classify(_expand(value, env, in_shell=False), "uri", container, pod)
                if ref is not None:
                    yield ref, f"{where}.args[{i}]"


def _env_adapters(
    entry: Mapping[str, Any], location: str, env: Mapping[str, str], container: Mapping[str, Any], pod: _Pod
) -> Iterator[tuple[str, str]]:
    """The adapters of TGI's ``LORA_ADAPTERS`` env entry (comma-separated)."""
    if "valueFrom" in entry:
        yield _indirect(entry), f"{location}.valueFrom"
        return
    value = _text(entry.get("value"))
    for item in _adapter_items(_expand(value, env, in_shell=False), comma=True) if value else ():
        ref = _classify(item, "hf", container, pod)
        if ref is not None:
            yield ref, f"{location}.value"


def csi_source(volume: Mapping[str, Any]) -> str | None:
    """The model a CSI inline volume of a model driver mounts (an OCI reference)."""
    csi = volume.get("csi")
    if not isinstance(csi, Mapping) or csi.get("driver") not in MODEL_CSI_DRIVERS:
        return None
    attributes = csi.get("volumeAttributes")
    ref = _text(attributes.get("modelRef")) if isinstance(attributes, Mapping) else None
    # Without modelRef guard cannot tell what it mounts: an unresolvable source, never nothing.
    return ref if ref is not None else f"unresolved://csi/{csi['driver']}/{volume.get('name', '')}"


def storage_spec_source(spec: Any) -> str | None:
    """A KServe storage spec ``{key, path, parameters, storageUri}`` as one source reference."""
    if not isinstance(spec, Mapping):
        return None
    uri = _text(spec.get("storageUri"))
    if uri is not None:
        return uri
    key = _text(spec.get("key"))
    path = _text(spec.get("path"))
    params = spec.get("parameters")
    params = params if isinstance(params, Mapping) else {}
    if key is None and path is None and not params:
        return None
    authority = quote(key or "default", safe="")
    for name in sorted(str(n) for n in params):
        authority += f";{quote(name, safe='')}={quote(str(params[name]), safe='')}"
    return f"kserve-storage://{authority}/{(path or '').lstrip('/')}"


def model_id_reference(value: str) -> str:
    """A model name a serving runtime resolves on the Hugging Face Hub when it has no scheme."""
    value = value.strip()
    if _SCHEME_RE.match(value):
        return value
    if value.startswith("/"):  # a path on the runtime's own volume: not known here
        return f"file://{value}"
    return f"hf://{value}"
