"""Located error messages for study files: each problem names the line, the key path, the bad value and
what is allowed, and all problems of a file come in one `SpecError`."""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel

from workbench.format import short_repr
from workbench.spec.base import SCALAR
from workbench.types import InputError

#: problems listed in one message (a file with thousands of mistakes still gets a readable one)
MAX_SHOWN = 20


class SpecError(InputError):
    """A study definition is wrong. The message lists every problem with its location."""

    def __init__(self, source: str, problems: list[str], total: int | None = None):
        self.source = source
        self.problems = problems
        n = max(total or 0, len(problems))
        head = f"{source}: {n} problem{'s' if n > 1 else ''} in the study definition"
        shown = [f"  - {p}" for p in problems[:MAX_SHOWN]]
        if n > len(shown):
            shown.append(f"  ... and {n - len(shown)} more")
        super().__init__(head + "\n" + "\n".join(shown))


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _walk(root: Any, loc: tuple[Any, ...]) -> tuple[Any, int | None]:
    """The YAML node at `loc` (None when the path leaves the file) and the line of its key."""
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if nxt is None:
                return None, line
            line = nxt[0].start_mark.line + 1
            node = nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return None, line
    return node, line


def _line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    return _walk(root, loc)[1]


def at(root: Any, loc: tuple[Any, ...], what: str) -> str:
    line = _line_of(root, loc) if root is not None else None
    return f"{'line ' + str(line) + ', ' if line else ''}{_loc_str(loc)}: {what}"


def _clean_loc(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Any, ...]:
    """Drop the union and validator tags pydantic puts into locations: keep only real keys of the input."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and part < len(node)
        ):
            node = node[part]
        elif missing and i == len(loc) - 1 and isinstance(node, dict):
            pass  # a missing key: not in the input, but it is what the user must add
        else:
            continue
        out.append(part)
    return tuple(out)


def describe(err: dict[str, Any], root: Any, data: Any, model: type[BaseModel]) -> str:
    """One pydantic error of validating `data` against `model`, located in the YAML tree `root`."""
    kind = err["type"]
    loc = _clean_loc(tuple(err["loc"]), data, missing=kind == "missing")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, tuple(err["loc"])[:-1])
        what = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    elif kind == "missing":
        what = "required key is missing"
    else:
        node = _walk(root, loc)[0] if root is not None and loc else None
        what = value_message(err, node.value if isinstance(node, yaml.ScalarNode) else None)
    return at(root, loc, what)


def value_message(err: dict[str, Any], written: str | None = None) -> str:
    """A pydantic error about a value, with the value when it is a scalar: as written in the file when
    known (`yes`, not True), cut short when long."""
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if written is not None and isinstance(value, SCALAR) and not isinstance(value, str):
        return f"got {written if len(written) <= 60 else written[:56] + ' ...'}; {msg}"
    return f"got {short_repr(value)}; {msg}" if isinstance(value, SCALAR) or value is None else msg


def _allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys of the model at pydantic location `loc` (with its union tags), for "allowed keys"."""
    ann: Any = model
    for part in loc:
        ann = _step(ann, part)
        if ann is None:
            return []
    found = _first_model(ann)
    return [k for k in found.model_fields if k != "source_path"] if found is not None else []


def _step(ann: Any, part: Any) -> Any:
    """The annotation one location part below `ann`: a model's field, a dict's value, a list's item, or
    the member of a union that a tag names."""
    ann = _unwrap(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        field = ann.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is dict:
        return args[1]
    if origin is list:
        return args[0]
    for member in args:  # a union: the member tagged `part` (Tag or a Literal discriminator value)
        if part in _tags(member):
            return _unwrap(member)
    return None


def _unwrap(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _tags(member: Any) -> set[Any]:
    tags = {getattr(m, "tag", None) for m in getattr(member, "__metadata__", ())} - {None}
    inner = _unwrap(member)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        for field in inner.model_fields.values():
            if typing.get_origin(field.annotation) is typing.Literal:
                tags |= set(typing.get_args(field.annotation))
    return tags


def _first_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in typing.get_args(ann):
        m = _first_model(a)
        if m is not None:
            return m
    return None
