"""The recorded-grid file: a JSON Lines dataset of measured knob combinations, read anywhere.

Line 1 is a header (schema, engine, model, workload, axes, environment, command); every other line is
one measured point. `workbench grid` writes it (workbench.grid); the `replay` engine and notebooks read
it. Standard library only (pandas for `frame()` when asked), so the engines' floor can read a grid.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.types import InputError

GRID_SCHEMA = "workbench.grid"
GRID_SCHEMA_VERSION = 1


class GridError(InputError):
    """A grid file that cannot be used for this study, with what differs."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def _key(knobs: dict[str, Any], names: list[str]) -> tuple:
    return tuple(round(knobs[n], 9) if isinstance(knobs[n], float) else knobs[n] for n in names)


@dataclass
class Grid:
    """A loaded grid file: its header and its points, looked up by the knob values."""

    path: Path
    header: dict[str, Any]
    points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def axis_names(self) -> list[str]:
        return list(self.header["axes"])

    def size(self) -> int:
        return math.prod(len(v) for v in self.header["axes"].values())

    def find(self, knobs: dict[str, Any]) -> dict[str, Any] | None:
        """The point recorded for these knob values (every knob the grid fixed must match too)."""
        recorded = (
            self._index().get(_key(knobs, self.axis_names))
            if all(n in knobs for n in self.axis_names)
            else None
        )
        if recorded is None:
            return None
        same = all(_same(knobs[k], v) for k, v in recorded["knobs"].items() if k in knobs)
        return recorded if same else None

    def why_missing(self, knobs: dict[str, Any]) -> str:
        """Which knob value the grid does not hold, with the values it does."""
        for name, values in self.header["axes"].items():
            if not any(_same(knobs.get(name), v) for v in values):
                return f"{name}={knobs.get(name)!r} is not in the recorded grid {self.path.name} (it holds {values})"
        for point in self.points[:1]:
            for k, v in point["knobs"].items():
                if k not in self.header["axes"] and k in knobs and not _same(knobs[k], v):
                    return f"{k}={knobs[k]!r}, but the grid {self.path.name} was recorded with {k}={v!r}"
        return f"this combination was not recorded in {self.path.name} ({len(self.points)} of {self.size()} points)"

    def _index(self) -> dict[tuple, dict[str, Any]]:
        idx = getattr(self, "_idx", None)
        if idx is None:
            idx = {_key(p["knobs"], self.axis_names): p for p in self.points}
            self._idx = idx
        return idx

    def frame(self) -> Any:
        """The points as a pandas DataFrame (the grid's knobs and every metric), numbered in recording order."""
        import pandas as pd

        rows = [
            {"number": i, "state": p["status"], **{n: p["knobs"][n] for n in self.axis_names}, **p["metrics"]}
            for i, p in enumerate(self.points)
        ]
        return pd.DataFrame(rows)


def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise GridError(f"{path}: cannot read the grid file: {e.strerror}") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines):  # a recording killed while writing its last line: that point is redone
                break
            raise GridError(f"{path}:{i}: not JSON ({e.msg})") from None
    if not rows or rows[0].get("schema") != GRID_SCHEMA:
        raise GridError(
            f"{path}: not a workbench grid (the first line must be a header with schema {GRID_SCHEMA!r})"
        )
    if rows[0].get("schema_version", 0) > GRID_SCHEMA_VERSION:
        raise GridError(
            f"{path}: grid schema version {rows[0]['schema_version']} is newer than this workbench reads"
        )
    return Grid(path, rows[0], rows[1:])
