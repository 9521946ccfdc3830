"""The embedded engine's decision cache: a decision reused for an input the library has judged.

Sound because the key is everything the policies can read: the whole input document as sent to
the engine (time-dependent fields included, such as a budget's ``usageAgeSeconds``), less only
``request.uid``, and that only when the library provably never reads it. Rego is deterministic
apart from a few builtins (time, randomness, network, the runtime): a library calling any of
them gets no cache at all. What the library reads is decided from its text, conservatively: any
use of ``input`` or ``input.request`` as a whole (``walk(input)``, ``input[k]``, ``r := input.request``,
``import input.request``) counts as reading the uid, and so does the word ``uid`` anywhere outside
comments; ``object.get(input, ["tenant", ...], d)`` with a literal first key other than
``request`` does not.

The cache is per engine, so a reloaded config or library (a new engine) starts empty; entries are
evicted least recently used. Keys are SHA-256 digests of the serialized document (SHA-256 runs on
the CPU's SHA extensions: twice as fast as BLAKE2b on a 4.5 KiB input here).

Behind it, ``TemplateCache`` keeps the violations of the rules (a policy's ``deny`` or ``warn``
set) that provably read none of the fields in which otherwise equal inputs differ (``VOLATILE``:
the uid, the names of a controller's pods; what a rule reads is found by ``guard.policy.reads``),
keyed by the input without those fields: a ReplicaSet's new pod is evaluated on the few rules
reading its name. With it, both keys come from one serialization (``steady_keys``): the input
without those fields is hashed for the template key, and the hash carried on over their values
for the decision key. That serialization is kept by top-level section (``SteadyKeys.sections``):
the text the engine is given, whole or only the sections some policies read, is put together
from it, and the sections built once per config (``JsonConstant``: the cluster, the settings,
the other tenants) carry their text, so no input is serialized twice.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

import pydantic_core

from guard.policy.decision import Decision, Violation
from guard.policy.reads import Path, referenced_names, related
from guard.untrusted import may_nest_deeper, nesting_depth

V = TypeVar("V")

# builtins whose value is not a function of input and data alone
NON_DETERMINISTIC = (
    "time.now_ns",
    "rand.",
    "uuid.rfc4122",
    "uuid.v4",
    "http.send",
    "opa.runtime",
    "net.lookup_ip_addr",
    "io.jwt.decode_verify",
    "crypto.x509.parse_and_verify_certificates",
    "trace(",
)
_INPUT_PATH = re.compile(r"\binput((?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)")
_GET_INPUT = re.compile(r"object\.get\(\s*$")
_LITERAL_KEY = re.compile(r'^\s*,\s*\[?\s*"([A-Za-z_][A-Za-z0-9_]*)"')


# A "..." string (a backslash escapes the next character; unterminated: to the end), a `...` raw
# string, or a comment to the end of its line: one pass of the regex engine, not a Python loop
# per character (21 ms -> ~1 ms for the shipped library, at every engine built).
_TOKENS = re.compile(r'"(?:\\.|[^"\\])*"?|`[^`]*`?|#[^\n]*', re.DOTALL)


def without_comments(text: str) -> str:
    """Rego source without its ``#`` comments (``#`` inside "..." or `...` strings kept)."""
    return _TOKENS.sub(lambda m: "" if m.group().startswith("#") else m.group(), text)


def _whole_input_read(text: str, match: re.Match[str]) -> bool:
    """A use of ``input`` or ``input.request`` as a whole, except ``object.get(input, ["k", ...])``
    with a literal first key other than ``request``."""
    path = [part.strip() for part in match.group(1).split(".")[1:]]
    if path not in ([], ["request"]):
        return False
    if path == [] and _GET_INPUT.search(text[max(0, match.start() - 40) : match.start()]):
        key = _LITERAL_KEY.match(text[match.end() : match.end() + 80])
        return key is None or key.group(1) == "request"
    return True


# The names of NON_DETERMINISTIC as prefixes of a dotted name (``trace(`` -> ``trace``), and the
# variables they start from (``time``, ``rand``, ..., ``trace``); those of them a name of a builtin
# is indexed from (``trace`` is a function, not a namespace).
_NON_DETERMINISTIC_NAMES = tuple(name.rstrip("(") for name in NON_DETERMINISTIC)
_NAMESPACES = sorted({name.split(".")[0] for name in _NON_DETERMINISTIC_NAMES})
_INDEXED_NAMESPACES = [
    ns for ns in _NAMESPACES if any(n.startswith(ns + ".") for n in _NON_DETERMINISTIC_NAMES)
]

# A builtin is also called through an index of its name: regorus evaluates ``time["now_ns"]()``,
# ``rand["intn"]("k", 10)`` or ``io.jwt["decode_verify"](...)`` as the dotted call, which the
# names above do not match. A namespace of those builtins indexed at all, as a reference of its own
# (not a field: ``input.time[0]``), counts as calling them (conservatively: a rule's local variable
# of that name indexed costs the library its cache, never a decision).
_INDEXED_BUILTIN = re.compile(r"(?<![.\w])(?:" + "|".join(_INDEXED_NAMESPACES) + r")(?:\.\w+)*\s*\[")


def cacheable(texts: Iterable[str]) -> bool:
    """Whether decisions of a library made of ``texts`` are a function of its input alone: none
    of them names a non-deterministic builtin, dotted or indexed (comments included: a doubt
    costs the cache, never a decision)."""
    return not any(name in text for text in texts for name in NON_DETERMINISTIC) and not any(
        _INDEXED_BUILTIN.search(text) for text in texts
    )


def calls_non_deterministic(names: Iterable[str]) -> bool:
    """Whether a library referring to ``names`` (``guard.policy.reads.referenced_names`` of its
    syntax tree) may call a builtin of ``NON_DETERMINISTIC``: the check of the tree behind the
    text's (``cacheable``), whatever syntax named the builtin."""
    return any(name.startswith(_NON_DETERMINISTIC_NAMES) for name in names)


# A namespace as the tree's JSON writes any string: a tree without one of them as a whole string
# anywhere names no such builtin.
_BUILTIN_ROOT = re.compile('"(?:' + "|".join(_NAMESPACES) + ')"')


def tree_calls_non_deterministic(ast_json: str) -> bool:
    """``calls_non_deterministic`` of a syntax tree (``Engine.get_ast_as_json``). The walk of
    every reference (~47 ms for a tree of the shipped library's size) is made only when one of
    the builtins' namespaces appears in the tree's text as a string (~5 ms to search)."""
    return _BUILTIN_ROOT.search(ast_json) is not None and calls_non_deterministic(referenced_names(ast_json))


def reads_uid(texts: Iterable[str]) -> bool:
    """Whether a library may read ``input.request.uid`` (conservatively: when in doubt, yes)."""
    for text in map(without_comments, texts):
        if re.search(r"\buid\b", text) or any(_whole_input_read(text, m) for m in _INPUT_PATH.finditer(text)):
            return True
    return False


def _read_only(*_args: Any, **_kwargs: Any) -> Any:
    raise TypeError(
        "a constant part of the policy input is read-only (it carries its JSON): change a copy "
        "(copy.copy / copy.deepcopy make plain ones)"
    )


class JsonConstant(dict[str, Any]):
    """A section of the policy input that depends on the config alone (``guard.policy.input.
    InputConstants``), built once per config and shared by every input: it carries its JSON text
    (``json``, pydantic-core's, as ``pydantic_core.to_json`` of the dict gives it), so the inputs
    holding it do not serialize it again. It refuses to be changed in place (``TypeError``); what
    it holds must not be changed either. A copy (``copy``, ``deepcopy``, pickle) is a plain dict."""

    __slots__ = ("digest", "json")
    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __reduce_ex__(self, _protocol: Any) -> Any:
        return (dict, (dict(self),))

    def __init__(self, value: Mapping[str, Any]) -> None:
        dict.update(self, value)
        self.json = pydantic_core.to_json(self)
        self.digest = hashlib.sha256(self.json).digest()  # what a cache key holds of it (steady_keys)


class JsonConstantList(list[Any]):
    """``JsonConstant`` for a list (``otherTenants``); a copy is a plain list."""

    __slots__ = ("digest", "json")
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce_ex__(self, _protocol: Any) -> Any:
        return (list, (list(self),))

    def __init__(self, value: Iterable[Any]) -> None:
        list.extend(self, value)
        self.json = pydantic_core.to_json(self)
        self.digest = hashlib.sha256(self.json).digest()


def section_json(value: Any) -> bytes:
    """``pydantic_core.to_json(value)``, the text a ``JsonConstant`` carries when it is one."""
    if type(value) is JsonConstant or type(value) is JsonConstantList:
        return value.json
    return pydantic_core.to_json(value)


_KEYS: dict[str, bytes] = {}  # a top-level key -> its JSON text and a colon: the input's few keys


def _key_json(key: str) -> bytes:
    found = _KEYS.get(key)
    if found is None:
        found = pydantic_core.to_json(key) + b":"
        if len(_KEYS) < 64:  # the input's keys, and a few more (tests): not any document's
            _KEYS[key] = found
    return found


def document_json(document: Mapping[str, Any], sections: Mapping[str, bytes] | None = None) -> bytes:
    """``pydantic_core.to_json(document)`` (the same bytes), the JSON of each top-level value
    taken from ``sections`` where it is there, else from the value (``section_json``). Raises as
    ``to_json`` does for a value it cannot serialize; a key that is no string gets its text from
    ``to_json`` (which makes one: ``1`` becomes ``"1"``)."""
    if not all(type(key) is str for key in document):
        return pydantic_core.to_json(document)
    known = sections or {}
    return (
        b"{"
        + b",".join(
            _key_json(key) + (known[key] if key in known else section_json(value))
            for key, value in document.items()
        )
        + b"}"
    )


class BoundedLru(Generic[V]):
    """A bounded LRU keyed by digests, counting its hits and misses (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: bytes, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class DecisionCache(BoundedLru[Decision]):
    """A bounded LRU of decisions keyed by the input document (thread-safe)."""

    def __init__(self, size: int, *, ignore_uid: bool) -> None:
        super().__init__(size)
        self.ignore_uid = ignore_uid

    def sent(self, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """The document as its key is made: without the request uid when the cache ignores it
        (the library reads it nowhere: the engine may be given this document)."""
        request = document.get("request")
        if self.ignore_uid and isinstance(request, Mapping) and "uid" in request:
            return {**document, "request": {**request, "uid": ""}}
        return document

    @staticmethod
    def key_of(text: bytes) -> bytes:
        return hashlib.sha256(text).digest()

    def key(self, document: Mapping[str, Any]) -> bytes:
        return self.key_of(document_json(self.sent(document)))


# regorus' JSON parser refuses these in an input: a text holding them is always evaluated, so that
# the engine's error is raised as without the cache (guard's own parsers refuse them before).
UNLOADABLE_TOKENS = (b"NaN", b"Infinity")
ENGINE_MAX_DEPTH = 127  # serde_json's recursion limit: 128 levels of nesting is refused


def loadable(text: bytes) -> bool:
    """Whether the engine accepts ``text`` (pydantic-core's JSON of an input) as its input: no
    NaN / Infinity constants (a string holding the word counts too: conservative), nesting within
    the parser's limit."""
    if any(token in text for token in UNLOADABLE_TOKENS):
        return False
    return not may_nest_deeper(text, ENGINE_MAX_DEPTH) or nesting_depth(text) <= ENGINE_MAX_DEPTH


# Where inputs that are otherwise equal differ from one request to the next: a request's uid, and
# the names of a controller's pods (each its own, made from the template's generateName).
VOLATILE: tuple[Path, ...] = (("request", "uid"), ("request", "name"), ("workload", "name"))


# VOLATILE by top-level section: (section, ((index in VOLATILE, field), ...)); every field of
# VOLATILE lies two levels down
assert all(len(path) == 2 for path in VOLATILE)
_VOLATILE_BY_SECTION: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = tuple(
    (section, tuple((i, path[1]) for i, path in enumerate(VOLATILE) if path[0] == section))
    for section in dict.fromkeys(path[0] for path in VOLATILE)
)


def reads_volatile(paths: Iterable[Path]) -> bool:
    """Whether a policy reading ``paths`` may see a field of ``VOLATILE``."""
    return any(related(path, field) for path in paths for field in VOLATILE)


def split_volatile(document: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[list[Any]]]:
    """``(steady, values)``: ``steady`` is ``document`` with every field of ``VOLATILE`` it holds
    set to null (copies along the way: the document itself is not changed); a rule reading none of
    them gets the same sets from either, every path it reads lying beside these fields, not above
    or below them. ``values`` holds, for each field, ``[value]`` when the document has it and
    ``[]`` when it has not (a null and an absent field differ: ``not input.workload.name`` holds
    for one only). The two together are the document."""
    out = dict(document)
    values: list[list[Any]] = [[] for _ in VOLATILE]
    for section, fields in _VOLATILE_BY_SECTION:
        child = out.get(section)
        if isinstance(child, Mapping):
            child = out[section] = dict(child)
            for i, field in fields:
                if field in child:
                    values[i] = [child[field]]
                    child[field] = None
    return out, values


# the top-level sections holding a VOLATILE field: their text differs between the steady input
# and the input sent
VOLATILE_SECTIONS = frozenset(path[0] for path in VOLATILE)


class SteadyKeys(NamedTuple):
    """The keys of one input for an engine with a template cache, made from one serialization."""

    template: bytes  # TemplateCache's: SHA-256 over the input without its VOLATILE fields
    decision: bytes  # the decision cache's: the same hash carried on over those fields' values
    volatile: bytes  # those values as JSON, ``[[value] or [] for each field]``, as sent
    shape: tuple[bool, ...] | None  # which of those fields the input holds; None: one not a string
    # the JSON of the top-level sections serialized for the keys (not constants: they carry their
    # own) but those of VOLATILE_SECTIONS: the same in the input sent (``sent_json`` puts the text
    # of that input, or of some of its sections, together)
    sections: Mapping[str, bytes]


def sent_json(sent: Mapping[str, Any], keys: SteadyKeys, only: frozenset[str] | None = None) -> bytes:
    """The JSON text of ``sent`` (the input ``keys`` were made of, as the decision cache sends
    it), or of its top-level sections in ``only``: the sections of ``keys`` reused, those holding
    a volatile field serialized again."""
    part = sent if only is None else {k: v for k, v in sent.items() if k in only}
    return document_json(part, keys.sections)


def steady_keys(document: Mapping[str, Any], *, ignore_uid: bool) -> SteadyKeys:
    """The template and decision keys of ``document``. The template key is SHA-256 over the
    document without its volatile fields, section by section: each section's key (a JSON string
    and a colon) and the SHA-256 of its JSON (the digest a ``JsonConstant`` carries). The decision
    key covers the document as ``DecisionCache.sent`` makes it: the same, a NUL (where a key's
    opening quote would be), then those fields' values (the uid as "" when the cache ignores it),
    which together give back that document. ``volatile`` nests each value two
    levels down, as deep as it lies in the document (``request.uid``, ``request.name``,
    ``workload.name``): ``loadable(volatile)`` says whether putting those values back into an input
    the engine took makes one it refuses."""
    steady, values = split_volatile(document)
    if ignore_uid and values[0]:
        values[0] = [""]
    volatile = pydantic_core.to_json(values)
    sections: dict[str, bytes] = {}
    if all(type(key) is str for key in steady):
        # each section as its key and the SHA-256 of its JSON (a constant carries its own): the
        # same key for equal inputs, whether a section is a constant or a copy of one
        parts = [b"S"]
        for key, value in steady.items():
            if type(value) is JsonConstant or type(value) is JsonConstantList:
                parts.append(_key_json(key) + value.digest)
                continue
            text = pydantic_core.to_json(value)
            if key not in VOLATILE_SECTIONS:
                sections[key] = text
            parts.append(_key_json(key) + hashlib.sha256(text).digest())
        digest = hashlib.sha256(b"".join(parts))
    else:  # a key that is no string (no input guard builds): the document's JSON as a whole
        digest = hashlib.sha256(b"J" + pydantic_core.to_json(steady))
    template = digest.copy().digest()
    digest.update(b"\0")
    digest.update(volatile)
    shape = None if any(v and type(v[0]) is not str for v in values) else tuple(bool(v) for v in values)
    return SteadyKeys(template, digest.digest(), volatile, shape, sections)


class Template(NamedTuple):
    """What the template cache keeps of the first input of a template (``TemplateCache``)."""

    violations: tuple[Violation, ...]  # the steady rules', in decision order
    # the engine's volatile queries (their indexes) whose rules only print the volatile fields
    # (``guard.policy.reads.library_reads``' emptiness) and found nothing in that input: they find
    # nothing either in an input of the same template and ``shape``, whatever the strings
    empty: frozenset[int]
    shape: tuple[bool, ...] | None  # that input's ``SteadyKeys.shape``


class TemplateCache(BoundedLru[Template]):
    """The violations of the rules (a policy's ``deny`` or ``warn`` set) that read no field of
    ``VOLATILE``, keyed by the input without those fields: a ReplicaSet's pods differ in their
    names, which a few rules read; the others' violations are reused, and only those few
    evaluated, or none when those found nothing and only print the name (``Template.empty``).
    A bounded LRU (thread-safe) of ``Template`` by SHA-256 of the serialized input."""

    def __init__(self, size: int, rules: Iterable[tuple[str, str]]) -> None:
        super().__init__(size)
        self.rules = frozenset(rules)  # (policy, "deny" | "warn"); keys: steady_keys(...).template
