"""A cross-check's result: the engine's own tool's numbers beside the trial's (`Engine.crosscheck`).

One typed shape for every tool (trtllm-bench, AIPerf), so the ratio has one direction, the tool's /
ours, wherever it is printed, written to `comparison.json` or logged to MLflow (`<tool>_ratio.*`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricComparison:
    """One metric as the workbench and the engine's own tool measured it. `ratio` is the tool's / ours
    for every tool (logged to MLflow as `<tool>_ratio.<metric>`); None where ours is missing or 0."""

    ours: float | None
    theirs: float

    @property
    def ratio(self) -> float | None:
        return self.theirs / self.ours if self.ours else None


def compare_metrics(ours: dict[str, float], theirs: dict[str, float]) -> dict[str, MetricComparison]:
    """Every metric the tool reported, beside ours."""
    return {k: MetricComparison(ours.get(k), float(v)) for k, v in theirs.items()}


@dataclass
class Crosscheck:
    """What an engine's cross-check returns: the tool's numbers beside the trial's, and how they came."""

    #: the tool (`trtllm-bench`, `aiperf`), as `Engine.crosscheck_tool` names it
    tool: str
    metrics: dict[str, MetricComparison]
    #: where the measured engine came from ("trtllm-bench build", "workbench engine cache", ...)
    engine_source: str
    note: str = ""
    #: the command lines run, by step
    commands: dict[str, list[str] | None] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    study: str = ""
    trial: int | None = None

    @property
    def their_metrics(self) -> dict[str, float]:
        return {k: m.theirs for k, m in self.metrics.items()}

    def to_json(self) -> dict[str, Any]:
        """`comparison.json`: each metric as {workbench, <tool>, ratio (tool / ours)}."""
        key = self.tool.replace("-", "_")
        return {
            "tool": self.tool,
            "study": self.study,
            "trial": self.trial,
            "engine_source": self.engine_source,
            "note": self.note,
            "commands": self.commands,
            "timings_s": self.timings_s,
            "metrics": {
                k: {"workbench": m.ours, key: m.theirs, "ratio": m.ratio} for k, m in self.metrics.items()
            },
            "their_metrics": self.their_metrics,
        }
