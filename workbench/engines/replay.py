"""The `replay` engine: trials answered from a recorded grid instead of a GPU.

A study with `engine: replay` and `engine_options: {grid: FILE}` runs exactly like any other study
(Optuna sampler, constraints, baseline ratio, MLflow runs), but each trial returns the metrics that
were measured for its knob values when the grid was recorded (`workbench grid`). Knob values the
grid does not hold are infeasible, with the values it does. That makes search strategies comparable
offline, reproducibly and in milliseconds per trial; the numbers remain those of the recorded
machine, whose environment each result carries.

The knobs are those of the engine that recorded the grid (today `hf`).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.engines.base import Artifact, DeviceInfo, Engine, EngineError, FeasibilityContext, Runner
from workbench.engines.hf.engine import HFEngine


class ReplayOptions(BaseModel):
    """`engine_options:` of a replay study."""

    model_config = ConfigDict(extra="forbid")
    grid: str = Field(description="the recorded grid file (JSON Lines), relative to the study file")


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Any:
    from workbench.grid import load_grid

    return load_grid(path)


def grid_for(options: dict[str, Any], study_dir: str | None) -> Any:
    """The grid a study's options name (cached while the file is unchanged)."""
    p = Path(ReplayOptions.model_validate(options).grid).expanduser()
    if not p.is_absolute() and study_dir:
        p = Path(study_dir) / p
    p = p.resolve()
    if not p.is_file():
        from workbench.grid import GridError

        raise GridError(f"engine_options.grid: no grid file at {p}")
    return _load(str(p), p.stat().st_mtime)


def _check(options: dict[str, Any], study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    from workbench.grid import GridError

    try:
        grid = grid_for(options, study_dir)
    except GridError as e:
        return [(("grid",), str(e).removeprefix("engine_options.grid: "))]
    if grid.header.get("engine") != "hf":
        return [
            (
                ("grid",),
                f"{grid.path} was recorded with engine {grid.header.get('engine')!r}; replay answers hf grids",
            )
        ]
    return []


class ReplayEngine(Engine):
    name = "replay"
    version = "1"
    knobs = HFEngine.knobs
    options_model = ReplayOptions
    #: trials are answered in the orchestrating process (no worker, no device)
    executor = "replay"

    @classmethod
    def check_options(
        cls, options: dict[str, Any], study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        return _check(options, study_dir)

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        grid = grid_for(context.options, context.study_dir)
        return None if grid.find(knobs) is not None else grid.why_missing(knobs)

    @classmethod
    def answer(cls, spec: Any, knobs: dict[str, Any], trial_id: str) -> Any:
        """The recorded point as a trial result (status, metrics, failure), traceable to the grid file."""
        from workbench.knobs import split_knobs
        from workbench.trials.result import Failure, TrialResult

        t0 = time.perf_counter()
        grid = grid_for(spec.engine_options, str(spec.source_path.parent) if spec.source_path else None)
        point = grid.find(knobs)
        if point is None:  # infeasible_reason ran first; a grid edited in between ends here
            raise EngineError(grid.why_missing(knobs))
        build, runtime = split_knobs(cls.knobs, knobs)
        head = grid.header
        if head.get("workload") != spec.workload.model_dump(mode="json"):
            status, failure, metrics = (
                "FAILED",
                Failure(
                    kind="invalid_input",
                    message=f"the study's workload differs from the one recorded in {grid.path.name}; "
                    "replay answers only the recorded workload (copy it from the grid's header)",
                ),
                {},
            )
        else:
            status = point["status"]
            failure = Failure(**point["failure"]) if point.get("failure") else None
            metrics = dict(point["metrics"])
        return TrialResult(
            study=spec.name,
            trial_id=trial_id,
            status=status,
            failure=failure,
            engine=cls.name,
            model=head["model"].get("source", ""),
            knobs=knobs,
            build_knobs=build,
            runtime_knobs=runtime,
            engine_config={**point.get("engine_config", {}), "replayed_engine": head.get("engine")},
            build=point.get("build") or {},
            metrics=metrics,
            bench={
                "replay": {
                    "grid": str(grid.path),
                    "grid_command": head.get("command"),
                    "grid_started": head.get("started"),
                    "point_recorded": point.get("recorded"),
                },
                "roofline": point.get("roofline"),
                "memory": point.get("memory"),
            },
            environment={"recorded": head.get("environment", {}), "replayed_from": str(grid.path)},
            timings_s={
                **{f"recorded_{k}": float(v) for k, v in (point.get("timings_s") or {}).items()},
                "replay": time.perf_counter() - t0,
            },
        )

    def build(self, plan: Any, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        raise EngineError("the replay engine builds nothing: trials are answered from the recorded grid")

    def open(self, plan: Any, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        raise EngineError("the replay engine runs nothing: trials are answered from the recorded grid")
