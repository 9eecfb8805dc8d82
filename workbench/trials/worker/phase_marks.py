"""Phase marks written by the worker, so memory sampled from outside can be split by phase.

The worker's memory is sampled by the executor (`workbench.trials.orchestrator.memory_sampler`): the worker may run in
an environment without psutil or pynvml, or in a container. It only appends `{"phase", "t"}` lines
to a marks file as it moves from build to load, benchmark and accuracy. Standard library only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

MARKS_FILE = "phases.jsonl"


class PhaseMarks:
    """Appends (phase, wall time) lines to `path`; with no path they are kept in memory only."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.marks: list[tuple[str, float]] = []
        if self.path is not None:
            self.path.write_text("")

    def mark(self, phase: str) -> None:
        t = time.time()
        self.marks.append((phase, t))
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps({"phase": phase, "t": t}) + "\n")


def read_marks(path: str | Path) -> list[tuple[str, float]]:
    """The marks a worker wrote (a half-written last line, from a killed worker, is skipped)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.append((str(d["phase"]), float(d["t"])))
    return out
