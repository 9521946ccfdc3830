"""What each policy of a library reads of its input, found in the parsed modules (regorus' AST).

A policy's decision is a function of the input paths it reads, the rules of the packages it
refers to and what those read in turn: two inputs equal at those paths get the same ``deny`` and
``warn`` sets from it, whatever else differs (``guard.policy.cache``'s template cache rests on
that). The analysis is conservative, every doubt widening the read:

- Every reference rooted at ``input`` reads the subtree at its static prefix: ``input.a["b"][i].c``
  reads ``a.b`` (whatever comes from a value at a path is inside that path's subtree, wherever it
  is bound or passed on). ``input`` alone (``walk(input)``, ``input[k]``, ``x := input``, a local
  named ``input``) reads everything.
- ``object.get(<input ref>, "k" | ["k", ...], d)`` with literal keys reads the ref's path and the
  keys; any other argument is walked like everything else.
- ``import input.x [as y]`` reads ``x`` whole; an alias is never followed (the import covers it).
- A reference rooted at ``data`` (or ``import data.p``) depends on every package its static prefix
  lies in or above: ``data.guard.lib.fmt.value`` on ``guard.lib.fmt``, ``data.guard[x]`` on every
  package under ``guard``, ``data`` alone on all. A policy reads what its own package and every
  package it depends on, transitively, read.
- Any node the walker does not know is walked field by field: a reference in it is still found.

``rule_reads`` gives the same for each rule of a package (a policy's ``deny`` and ``warn`` are
asked apart): a rule reads what its own definitions read, with their modules' imports, and what
the rules of its package it names read (any variable of that name counts), transitively; another
package, or its own named through ``data``, is read whole.

Nothing here runs Rego: the modules are those loaded in a regorus Engine, so the AST is exactly
what the engine evaluates. Its nodes are the ``dict`` and ``list`` of a JSON parse (checked with
``isinstance(node, dict)``: ``Mapping``'s ABC check was a third of the walk's time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pydantic_core

Path = tuple[str, ...]
EVERYTHING: Path = ()
_REFS = ("RefDot", "RefBrack", "Var")
_STRINGS = ("String", "RawString")


@dataclass
class ModuleReads:
    """One module's reads: input paths, and ``data`` paths it refers to (its package's rules too)."""

    package: Path
    inputs: set[Path] = field(default_factory=set)
    data: set[Path] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # other variables a reference starts from


def minimal(paths: Iterable[Path]) -> frozenset[Path]:
    """``paths`` without any path another one covers (``()`` covers everything)."""
    out: list[Path] = []
    for path in sorted(set(paths), key=len):
        if not any(path[: len(kept)] == kept for kept in out):
            out.append(path)
    return frozenset(out)


def _string(node: Any) -> str | None:
    """The text of a string literal node, else None."""
    if isinstance(node, dict) and len(node) == 1:
        kind, body = next(iter(node.items()))
        if kind in _STRINGS and isinstance(body, dict) and isinstance(body.get("value"), str):
            return str(body["value"])
    return None


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _REFS


def _unroll(node: Any) -> tuple[Any, list[str | None], list[Any]]:
    """A reference taken apart: its root (a ``Var`` node, or the expression it starts from), its
    segments (a field's or a string index's text; None for any other index) and the index
    expressions that are not string literals."""
    segments: list[str | None] = []
    indexes: list[Any] = []
    while _is_ref(node):
        kind, body = next(iter(node.items()))
        if kind == "Var":
            break
        if kind == "RefDot":
            name = body.get("field")
            segments.append(
                name[-1] if isinstance(name, list) and name and isinstance(name[-1], str) else None
            )
        else:  # RefBrack
            index = body.get("index")
            literal = _string(index)
            if literal is None:
                indexes.append(index)
            segments.append(literal)
        node = body.get("refr")
    segments.reverse()
    return node, segments, indexes


def _var(node: Any) -> str | None:
    """The name of a ``Var`` node, else None."""
    if isinstance(node, dict) and len(node) == 1 and "Var" in node:
        value = node["Var"].get("value") if isinstance(node["Var"], dict) else None
        return value if isinstance(value, str) else None
    return None


def _static(segments: Sequence[str | None]) -> Path:
    out: list[str] = []
    for segment in segments:
        if segment is None:
            break
        out.append(segment)
    return tuple(out)


def _ref(node: Mapping[str, Any], reads: ModuleReads) -> None:
    root, segments, indexes = _unroll(node)
    _walk(indexes, reads)
    name = _var(root)
    if name is None:
        _walk(root, reads)  # a reference into a call's value, a literal...: whatever refs it holds
    elif name == "input":
        reads.inputs.add(_static(segments))
    elif name == "data":
        reads.data.add(_static(segments))
    else:
        reads.names.add(name)  # a local, or a rule of the package by its plain name


def _object_get(call: Mapping[str, Any], reads: ModuleReads) -> bool:
    """``object.get(<input ref>, <literal key or keys>, default)``: the path read; False when the
    call is not that (the caller walks it)."""
    fcn, params = call.get("fcn"), call.get("params")
    if not (isinstance(fcn, dict) and isinstance(params, list) and len(params) == 3):
        return False
    root, name = _plain_ref(fcn)
    if (root, name) != ("object", ("get",)):
        return False
    root, path = _plain_ref(params[0])
    if root != "input" or path is None:
        return False
    key = _string(params[1])
    if key is not None:
        keys: list[str] = [key]
    else:
        array = params[1].get("Array") if isinstance(params[1], dict) else None
        items = array.get("items") if isinstance(array, dict) else None
        if not isinstance(items, list) or not items:
            return False
        strings = [_string(item) for item in items]
        if any(s is None for s in strings):
            return False
        keys = [s for s in strings if s is not None]
    reads.inputs.add((*path, *keys))
    _walk(params[2], reads)
    return True


def _plain_ref(node: Any) -> tuple[str | None, Path | None]:
    """A reference made of a variable and string fields only: (root, fields); else (None, None)."""
    root, segments, indexes = _unroll(node)
    name = _var(root)
    if name is None or indexes or None in segments:
        return None, None
    return name, tuple(s for s in segments if s is not None)


def _walk(node: Any, reads: ModuleReads) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, reads)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        kind, body = next(iter(node.items()))
        if kind in _REFS:
            _ref(node, reads)
            return
        if kind == "Call" and isinstance(body, dict) and _object_get(body, reads):
            return
    for key, value in node.items():
        if key != "span":
            _walk(value, reads)


def _imports(ast: Mapping[str, Any], reads: ModuleReads) -> None:
    for imported in ast.get("imports") or []:
        root, path = _plain_ref(imported.get("refr"))
        if root == "input":
            reads.inputs.add(path if path is not None else EVERYTHING)
        elif root == "data":
            reads.data.add(path if path is not None else EVERYTHING)
        elif root not in ("rego", "future"):
            _walk(imported, reads)  # an import guard does not know: whatever refs it holds


def _package(module: Mapping[str, Any]) -> Path:
    ast = module["ast"]
    root, package = _plain_ref(ast["package"]["refr"])
    if root is None or package is None:  # pragma: no cover - regorus parses packages as refs
        raise ValueError(
            f"module {module.get('source', {}).get('file')}: unexpected package {ast['package']}"
        )
    return (root, *package)


def module_reads(module: Mapping[str, Any]) -> ModuleReads:
    """The reads of one module of ``Engine.get_ast_as_json()``."""
    ast = module["ast"]
    reads = ModuleReads(package=_package(module))
    _imports(ast, reads)
    reads.data.add(reads.package)  # its own rules, by their plain names
    _walk(ast.get("rules"), reads)
    return reads


def _rule_name(rule: Any) -> str | None:
    """The name a rule defines (its head's first segment: ``deny`` of ``deny contains v``, ``a``
    of ``a.b := 1``), else None (a rule guard does not know)."""
    if not (isinstance(rule, dict) and len(rule) == 1):
        return None
    kind, body = next(iter(rule.items()))
    refr = None
    if kind == "Spec" and isinstance(body, dict):
        head = body.get("head")
        if isinstance(head, dict) and len(head) == 1:
            inner = next(iter(head.values()))
            refr = inner.get("refr") if isinstance(inner, dict) else None
    elif kind == "Default" and isinstance(body, dict):
        refr = body.get("refr")
    return _var(_unroll(refr)[0]) if _is_ref(refr) else None


def related(a: Path, b: Path) -> bool:
    """Whether one path lies within the other (a read of either sees the other's value)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _closure(packages: Mapping[Path, ModuleReads]) -> dict[Path, frozenset[Path]]:
    depends = {
        name: {other for other in packages if any(related(ref, other) for ref in reads.data)}
        for name, reads in packages.items()
    }
    out: dict[Path, frozenset[Path]] = {}
    for name in packages:
        seen, pending = {name}, [name]
        while pending:
            for other in depends[pending.pop()]:
                if other not in seen:
                    seen.add(other)
                    pending.append(other)
        out[name] = minimal(path for other in seen for path in packages[other].inputs)
    return out


def _by_package(modules: Iterable[ModuleReads]) -> dict[Path, ModuleReads]:
    packages: dict[Path, ModuleReads] = {}
    for m in modules:
        merged = packages.setdefault(m.package, ModuleReads(package=m.package))
        merged.inputs |= m.inputs
        merged.data |= m.data
    return packages


def package_reads(ast_json: str) -> dict[Path, frozenset[Path]]:
    """For each package of the engine's modules, the input paths its rules may read, through
    every package they refer to, transitively (minimal: no path covered by another)."""
    # pydantic-core's parser: the tree of the shipped library is ~4 MB of JSON (20 ms, json 28)
    return _closure(_by_package(module_reads(m) for m in pydantic_core.from_json(ast_json)))


RuleKey = tuple[Path, str]  # (package, rule name)


class LibraryReads(NamedTuple):
    """What the modules of a library read (``library_reads``): each package's and each rule's reads, and
    what each rule's emptiness depends on, from one parse of the tree."""

    packages: dict[Path, frozenset[Path]]
    rules: dict[RuleKey, frozenset[Path]]
    emptiness: dict[RuleKey, frozenset[Path]]


def referenced_names(ast_json: str) -> frozenset[str]:
    """The dotted name of every reference in the tree made of a variable and fields or string
    indexes, and the static prefix of any other (``time.now_ns`` for ``time.now_ns()``,
    ``time["now_ns"]()`` and ``f with g as time.now_ns``; ``time`` and its prefixes too): every
    function the tree may call, by whatever syntax the parser accepts for the call."""
    names: set[str] = set()
    stack: list[Any] = [pydantic_core.from_json(ast_json)]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if _is_ref(node):
            root, segments, _ = _unroll(node)
            name = _var(root)
            if name is not None:
                names.add(".".join((name, *_static(segments))))
        stack.extend(value for key, value in node.items() if key != "span")
    return frozenset(names)


def rule_reads(ast_json: str) -> tuple[dict[Path, frozenset[Path]], dict[RuleKey, frozenset[Path]]]:
    """``(package_reads, rules)``: ``rules`` gives, for each rule name of each package, the input
    paths that rule may read: those its definitions (every module of the package, every body and
    else) read, with their modules' imports; those of the rules of its package it names, by any
    variable of theirs with that name (a local of the same name counts too), transitively; and
    all that a package read through ``data`` reads (its own package's included, when named so).
    A package holding a rule whose name is not found gives each of its rules the package's reads."""
    found = library_reads(ast_json, ())
    return found.packages, found.rules


def library_reads(ast_json: str, formatted: Sequence[Path]) -> LibraryReads:
    """``rule_reads`` of the tree, and for each rule the paths its set's emptiness may depend on:
    the same reads, but for the fields of ``formatted`` (input paths) its own definitions only
    print (``_masked``). Two inputs equal at a rule's emptiness reads, whose ``formatted`` fields
    are strings in both or absent in both, give it sets that are both empty or both not: those
    fields change the text of what the set holds, never whether a body succeeds."""
    parsed = pydantic_core.from_json(ast_json)
    modules: list[ModuleReads] = []  # each module's reads, as ``module_reads`` finds them
    rules: dict[Path, dict[str, ModuleReads]] = {}
    own: dict[Path, dict[str, ModuleReads]] = {}  # each rule's definitions with their prints masked
    unnamed: set[Path] = set()
    for module in parsed:
        package = _package(module)
        named = rules.setdefault(package, {})
        masked = own.setdefault(package, {})
        imports = ModuleReads(package=package)
        _imports(module["ast"], imports)
        whole = ModuleReads(package, set(imports.inputs), {*imports.data, package}, set(imports.names))
        modules.append(whole)
        # Each definition is walked once: its reads count for the module, for its rule and, when
        # masking leaves it as it is (most definitions), for its rule's emptiness.
        for rule in module["ast"].get("rules") or []:
            definition = ModuleReads(package=package)
            _walk(rule, definition)
            _merge(whole, definition)
            name = _rule_name(rule)
            if name is None:
                unnamed.add(package)
                continue
            tree = _masked(rule, formatted) if formatted else rule
            if tree is rule:
                printed = definition
            else:
                printed = ModuleReads(package=package)
                _walk(tree, printed)
            for target, found in ((named, definition), (masked, printed)):
                reads = target.setdefault(name, ModuleReads(package=package))
                _merge(reads, imports)
                _merge(reads, found)
    packages = _closure(_by_package(modules))
    out: dict[RuleKey, frozenset[Path]] = {}
    emptiness: dict[RuleKey, frozenset[Path]] = {}
    for package, named in rules.items():
        for name in named:
            if package in unnamed:
                out[(package, name)] = emptiness[(package, name)] = packages[package]
                continue
            out[(package, name)] = _rule_closure(name, named[name], named, packages)
            emptiness[(package, name)] = _rule_closure(name, own[package][name], named, packages)
    return LibraryReads(packages, out, emptiness)


def _merge(into: ModuleReads, reads: ModuleReads) -> None:
    into.inputs |= reads.inputs
    into.data |= reads.data
    into.names |= reads.names


def _rule_closure(
    name: str, first: ModuleReads, named: Mapping[str, ModuleReads], packages: Mapping[Path, frozenset[Path]]
) -> frozenset[Path]:
    """What rule ``name`` reads: ``first`` (its own definitions' reads), then those of the rules of
    its package it names (``named``), transitively, and of the packages referred to through data."""
    inputs: set[Path] = set()
    data: set[Path] = set()
    seen, pending = {name}, [first]
    while pending:
        reads = pending.pop()
        inputs |= reads.inputs
        data |= reads.data
        for rule in reads.names & named.keys():
            if rule not in seen:
                seen.add(rule)
                pending.append(named[rule])
    for below, paths in packages.items():
        if any(related(ref, below) for ref in data):
            inputs |= paths
    return minimal(inputs)


# sprintf verbs whose text of any string is made without failing, and is only that string's text
# (quoted for %q): regorus 0.13's sprintf never fails on them, whatever the string holds
_PRINTING_VERBS = frozenset("svq")
_NULL: dict[str, Any] = {"Null": {}}


def _verbs(text: str) -> list[str] | None:
    """The verbs of a sprintf format, one per argument in order (``%%`` takes none); None when it
    holds anything else after a ``%`` (flags, widths, explicit indexes: not followed here)."""
    verbs: list[str] = []
    start = 0
    while (at := text.find("%", start)) >= 0:
        verb = text[at + 1 : at + 2]
        if verb == "%":
            start = at + 2
        elif verb.isascii() and verb.isalpha():
            verbs.append(verb)
            start = at + 2
        else:
            return None
    return verbs


def _mask_prints(node: Any, formatted: Sequence[Path]) -> Any:
    """``node`` (the value a rule adds to its set) with every argument of ``formatted`` printed by a
    ``sprintf`` with %s / %v / %q replaced by null. Only through the object and array literals
    that build the value: a sprintf anywhere else (inside a call, a comprehension) stays as it is."""
    if not isinstance(node, dict) or len(node) != 1:
        return node
    kind, body = next(iter(node.items()))
    if not isinstance(body, dict):
        return node
    if kind == "Object" and isinstance(body.get("fields"), list):
        fields = [
            [*entry[:2], _mask_prints(entry[2], formatted)]
            if isinstance(entry, list) and len(entry) == 3
            else entry
            for entry in body["fields"]
        ]
        return {kind: {**body, "fields": fields}}
    if kind == "Array" and isinstance(body.get("items"), list):
        return {kind: {**body, "items": [_mask_prints(item, formatted) for item in body["items"]]}}
    if kind != "Call" or _plain_ref(body.get("fcn")) != ("sprintf", ()):
        return node
    params = body.get("params")
    if not (isinstance(params, list) and len(params) == 2):
        return node
    text = _string(params[0])
    array = params[1].get("Array") if isinstance(params[1], dict) and len(params[1]) == 1 else None
    items = array.get("items") if isinstance(array, dict) else None
    verbs = _verbs(text) if text is not None else None
    if not isinstance(array, dict) or not isinstance(items, list):
        return node
    if verbs is None or len(items) != len(verbs):
        return node
    masked = []
    for verb, item in zip(verbs, items, strict=True):
        root, path = _plain_ref(item)
        printed = root == "input" and path in formatted and verb in _PRINTING_VERBS
        masked.append(_NULL if printed else item)
    return {kind: {**body, "params": [params[0], {"Array": {**array, "items": masked}}]}}


def _var_count(node: Any, name: str) -> int:
    """How many times the variable ``name`` appears in ``node``."""
    if isinstance(node, list):
        return sum(_var_count(item, name) for item in node)
    if not isinstance(node, dict):
        return 0
    if _var(node) == name:
        return 1
    return sum(_var_count(value, name) for key, value in node.items() if key != "span")


def _masked(rule: Any, formatted: Sequence[Path]) -> Any:
    """A definition ``s contains x if { ...; x := <value>; ... }`` with the fields of ``formatted``
    its value only prints masked (``_mask_prints``): ``x`` appears nowhere else, and the assignment
    is a plain statement of the body (no ``with``), so what it prints reaches the set and nothing
    else. Any other definition is returned as it is."""
    spec = rule.get("Spec") if isinstance(rule, dict) and len(rule) == 1 else None
    head = spec.get("head") if isinstance(spec, dict) else None
    contains = head.get("Set") if isinstance(head, dict) and len(head) == 1 else None
    bodies = spec.get("bodies") if isinstance(spec, dict) else None
    if not (isinstance(contains, dict) and isinstance(bodies, list) and len(bodies) == 1):
        return rule
    key = _var(contains.get("key"))
    query = bodies[0].get("query") if isinstance(bodies[0], dict) else None
    stmts = query.get("stmts") if isinstance(query, dict) else None
    if key is None or key == "_" or not isinstance(stmts, list) or _var_count(rule, key) != 2:
        return rule
    for index, stmt in enumerate(stmts):
        if not isinstance(stmt, dict) or stmt.get("with_mods"):
            continue
        literal = stmt.get("literal")
        expr = literal.get("Expr") if isinstance(literal, dict) and len(literal) == 1 else None
        inner = expr.get("expr") if isinstance(expr, dict) else None
        assign = inner.get("AssignExpr") if isinstance(inner, dict) and len(inner) == 1 else None
        if not isinstance(assign, dict) or assign.get("op") != "ColEq" or _var(assign.get("lhs")) != key:
            continue
        assert isinstance(expr, dict) and isinstance(query, dict) and isinstance(spec, dict)
        value = {**assign, "rhs": _mask_prints(assign.get("rhs"), formatted)}
        printed = {**stmt, "literal": {"Expr": {**expr, "expr": {"AssignExpr": value}}}}
        new_stmts = [*stmts[:index], printed, *stmts[index + 1 :]]
        new_body = {**bodies[0], "query": {**query, "stmts": new_stmts}}
        return {"Spec": {**spec, "bodies": [new_body]}}
    return rule
