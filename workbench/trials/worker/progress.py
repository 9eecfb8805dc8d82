"""What a running trial has measured so far, for the pruner watching it from outside.

The worker appends one JSON line per step (each load of a sweep, each probe of a load search) to the
trial folder's progress file: `{"step", "load", "metrics"}` with the step's flat metrics and, under
service targets, the highest load met so far (`slo_max_load`). The executor reads new lines while the
worker runs (`trials.orchestrator.executors.Watch`) and may stop it. Standard library only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.jsonl"


class Progress:
    """Appends steps to `path` (no path: nothing is written, as in grid recording)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.steps = 0
        if self.path is not None:
            self.path.write_text("")

    def step(self, load: float, metrics: dict[str, Any]) -> None:
        finite = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        line = json.dumps({"step": self.steps, "load": load, "metrics": finite})
        self.steps += 1
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(line + "\n")


class ProgressReader:
    """The lines a worker appended since the last read (a half-written last line waits for the next)."""

    def __init__(self, path: str | Path) -> None:
        self.path, self.offset = Path(path), 0

    def new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for line in data[: end + 1].splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
