"""A trial answered from a recorded grid (`engine: replay`): the point recorded for its knob values.

The result is traceable to the grid file (its command, when it and the point were recorded) and
carries the recorded machine's environment; a study whose workload differs from the recorded one
fails, since the numbers would describe another workload.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.engines.base import EngineError
from workbench.trials.plan import TrialPlan
from workbench.trials.result import Failure, TrialResult


def answer(plan: TrialPlan, study_dir: str | None) -> TrialResult:
    """The recorded point as a trial result (status, metrics, failure)."""
    from workbench.engines import get_engine_class

    t0 = time.perf_counter()
    grid = get_engine_class(plan.engine).grid(plan.options(), study_dir)  # type: ignore[attr-defined]
    point = grid.find(plan.knobs)
    if point is None:  # infeasible_reason ran first; a grid edited in between ends here
        raise EngineError(grid.why_missing(plan.knobs))
    head = grid.header
    if not same_workload(head.get("workload") or {}, plan.workload.model_dump(mode="json")):
        res = TrialResult.unrun(
            plan,
            "FAILED",
            Failure(
                kind="invalid_input",
                message=f"the study's workload differs from the one recorded in {grid.path.name}; "
                "replay answers only the recorded workload (copy it from the grid's header)",
            ),
        )
    else:
        failure = Failure(**point["failure"]) if point.get("failure") else None
        res = TrialResult.unrun(plan, point["status"], failure)
        res.metrics = dict(point["metrics"])
    res.model = head["model"].get("source", "")
    res.engine_config = {**point.get("engine_config", {}), "replayed_engine": head.get("engine")}
    res.build = point.get("build") or {}
    res.bench = _bench(grid, point)
    res.environment = {"recorded": head.get("environment", {}), "replayed_from": str(grid.path)}
    res.timings_s = {
        **{f"recorded_{k}": float(v) for k, v in (point.get("timings_s") or {}).items()},
        "replay": time.perf_counter() - t0,
    }
    return res


def _bench(grid: Any, point: dict[str, Any]) -> dict[str, Any]:
    head = grid.header
    return {
        "replay": {
            "grid": str(grid.path),
            "grid_command": head.get("command"),
            "grid_started": head.get("started"),
            "point_recorded": point.get("recorded"),
        },
        "roofline": point.get("roofline"),
        "memory": point.get("memory"),
    }


def same_workload(recorded: dict[str, Any], study: dict[str, Any]) -> bool:
    """The study's workload is the recorded one; a setting added to the workload schema after the grid was
    recorded counts as equal when the study leaves it at its default (None)."""
    keys = set(recorded) | set(study)
    return all(recorded.get(k) == study.get(k) for k in keys if k in recorded or study.get(k) is not None)
