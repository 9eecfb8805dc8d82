"""Located error messages for study files: each problem names the line, the key path, the bad value and
what is allowed, and all problems of a file come in one `SpecError`."""

from __future__ import annotations

import typing
from typing import Any

import yaml
from pydantic import BaseModel

from workbench.spec.base import SCALAR
from workbench.types import InputError


class SpecError(InputError):
    """A study definition is wrong. The message lists every problem with its location."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        head = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the study definition"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == part), None)
            if nxt is None:
                break
            line = nxt[0].start_mark.line + 1
            node = nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


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
        allowed = _allowed_keys(model, loc[:-1])
        what = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    elif kind == "missing":
        what = "required key is missing"
    else:
        what = value_message(err)
    return at(root, loc, what)


def value_message(err: dict[str, Any]) -> str:
    """A pydantic error about a value, with the value when it is short enough to show."""
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    return f"got {value!r}; {msg}" if isinstance(value, SCALAR) or value is None else msg


def _allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        model = _first_model(ann)
        if model is None:
            return []
    return [k for k in model.model_fields if k != "source_path"]


def _first_model(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in typing.get_args(ann):
        m = _first_model(a)
        if m is not None:
            return m
    return None
