"""Reading a study file: YAML into a mapping plus its node tree (for line numbers in error messages),
then the `--set` changes, then validation.

A study file may come from someone else (handed to a shared tuning host), so reading it is bounded
before anything is built from it: the file's size, the nesting depth (checked on the parser's event
stream, before the recursive composer runs: libyaml's composer crashes the interpreter on very deep
nesting), and the number of values once aliases are expanded (a few nested anchors expand to billions
of values: an "alias bomb"). Duplicated keys are errors (YAML would keep the last one silently), and
the text must be UTF-8. Every problem is one `SpecError` naming the file and the line.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from workbench.spec.errors import SpecError
from workbench.spec.models import StudySpec
from workbench.spec.overrides import apply_changes
from workbench.spec.validate import validate_spec

#: a study file is a few kilobytes; this leaves room for long comments and embedded grids
MAX_FILE_BYTES = 1 << 20
#: values, written out or after alias expansion (a study has a few hundred)
MAX_VALUES = 20_000
#: nesting depth of collections (a study nests five or six deep)
MAX_DEPTH = 50

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


def load_spec(
    path: str | Path, overrides: dict[str, Any] | None = None, *, check_paths: bool = True
) -> StudySpec:
    """Read and validate a study file. `overrides` maps dotted keys (workload.num_requests) to values.
    `check_paths=False` for inspecting results on a machine that lacks the model (status, best, report)."""
    path = Path(path)
    data, root = read_yaml(path)
    apply_changes(data, overrides or {})
    return validate_spec(
        data, source=str(path), source_path=path.resolve(), yaml_root=root, check_paths=check_paths
    )


def read_yaml(path: Path) -> tuple[dict[str, Any], Any]:
    """The file's top-level mapping and its YAML node tree; a `SpecError` for anything else."""
    source = str(path)
    text = _read_text(path, source)
    try:
        _check_nesting(text, source)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_tree(root, source)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except SpecError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(source, [f"{where}not valid YAML ({getattr(e, 'problem', None) or e})"]) from None
    except (ValueError, OverflowError, RecursionError) as e:  # e.g. an integer of 5000 digits
        raise SpecError(source, [f"a value cannot be read: {str(e)[:200]}"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the file must hold a mapping (key: value pairs) at the top level"])
    return data, root


def _read_text(path: Path, source: str) -> str:
    """The file as text: a regular file of at most MAX_FILE_BYTES in UTF-8 (a BOM is allowed)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise SpecError(source, [f"cannot read the study file: {kind}"])
        if st.st_size > MAX_FILE_BYTES:
            raise SpecError(source, [_too_big(st.st_size)])
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SpecError(source, [f"cannot read the file: {e.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:  # grew while being read
        raise SpecError(source, [_too_big(len(raw))])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(
            source,
            [f"line {line}, column {column}: byte 0x{raw[e.start]:02x} is not UTF-8; save the file as UTF-8"],
        ) from None


def _too_big(size: int) -> str:
    return f"the file has {size:,} bytes; a study file may have at most {MAX_FILE_BYTES:,}"


def _check_nesting(text: str, source: str) -> None:
    """Collections nested deeper than MAX_DEPTH, or more than MAX_VALUES values written out: found on the
    event stream, which is parsed without recursion and stops at the first excess, so neither a deep
    nor a long file reaches the composer."""
    loader = _Loader(text)
    depth = values = 0
    try:
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                values += 1
                if values > MAX_VALUES:
                    raise SpecError(source, [_too_many(ev.start_mark.line + 1, "")])
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = ev.start_mark.line + 1
                    raise SpecError(
                        source, [f"line {line}: collections nested deeper than {MAX_DEPTH} levels"]
                    )
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _too_many(line: int, how: str) -> str:
    return f"line {line}: {how}more than {MAX_VALUES:,} values; a study needs a few hundred"


def _pairs(node: Any) -> Any:
    """The child nodes of a collection node (keys and values of a mapping)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield k
            yield v
    else:
        yield from node.value


def _check_tree(root: Any, source: str) -> None:
    """Walk the composed tree once (aliases are shared nodes, so this is linear in the file): the
    expanded size and depth of every collection, alias cycles and duplicated keys. Scalars are leaves
    of size and depth 1 and are never put on the stack."""
    if isinstance(root, yaml.ScalarNode):
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # the collections on the path from the root to the current one
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            n, d = 1, 1
            for c in _pairs(node):
                if isinstance(c, yaml.ScalarNode):
                    n, d = n + 1, max(d, 2)
                else:
                    n, d = n + size[id(c)], max(d, 1 + depth[id(c)])
            size[key], depth[key] = n, d
            _check_limits(node, n, d, source)
        elif key not in size:
            if key in open_nodes:
                line = node.start_mark.line + 1
                raise SpecError(source, [f"line {line}: an alias refers to a collection that contains it"])
            open_nodes.add(key)
            if isinstance(node, yaml.MappingNode):
                _check_duplicates(node, source)
            stack.append((node, True))
            stack.extend(
                (c, False) for c in _pairs(node) if not isinstance(c, yaml.ScalarNode) and id(c) not in size
            )


def _check_limits(node: Any, size: int, depth: int, source: str) -> None:
    line = node.start_mark.line + 1
    if size > MAX_VALUES:
        raise SpecError(source, [_too_many(line, "with its aliases (*name) expanded this holds ")])
    if depth > MAX_DEPTH:
        raise SpecError(
            source, [f"line {line}: with its aliases expanded this nests deeper than {MAX_DEPTH}"]
        )


def _check_duplicates(node: Any, source: str) -> None:
    """A key given twice in one mapping: YAML keeps the last silently, which hides a mistake."""
    seen: dict[Any, int] = {}
    problems = []
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode) or k.tag == _MERGE:
            continue
        line = k.start_mark.line + 1
        if k.value in seen:
            problems.append(
                f"line {line}, {k.value}: key given twice (first on line {seen[k.value]}); "
                "YAML would keep only the last: remove one"
            )
        else:
            seen[k.value] = line
    if problems:
        raise SpecError(source, problems)
