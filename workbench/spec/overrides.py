"""Changes on top of a study file: `--set KEY=VALUE` on the command line and `edit(spec, {...})` in code.

One dotted-key setter serves both, so `workload.num_requests=16` means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

import yaml

from workbench.spec.errors import SpecError
from workbench.spec.models import StudySpec


def set_dotted(data: dict[str, Any], key: str, value: Any, *, none_removes: bool = False) -> None:
    """Set `data[a][b][c] = value` for key "a.b.c", creating (or replacing non-mapping) parents.

    With `none_removes`, a value of None removes the key instead, so the model's default applies
    (the notebook API's `edit(spec, {"accuracy.limit": None})`).
    """
    *parents, last = key.split(".")
    node = data
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    if value is None and none_removes:
        node.pop(last, None)
    else:
        node[last] = value


def apply_changes(data: dict[str, Any], changes: dict[str, Any], *, none_removes: bool = False) -> None:
    for key, value in changes.items():
        set_dotted(data, key, value, none_removes=none_removes)


def parse_knob_assignments(spec: StudySpec, assignments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set` items into (knob values, dotted spec overrides); knob values are checked."""
    defs = spec.engine_knobs()
    knob_values: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", [f"{item!r}: expected KEY=VALUE, e.g. max_batch_size=8"])
        value = yaml.safe_load(raw) if raw.strip() else raw
        if "." in key:
            overrides[key] = value
            continue
        if key not in defs:
            raise SpecError(
                "--set", [f"{key}: unknown knob for engine {spec.engine!r}; allowed: {', '.join(defs)}"]
            )
        try:
            knob_values[key] = defs[key].check(value)
        except ValueError as e:
            raise SpecError("--set", [str(e)]) from None
    return knob_values, overrides
