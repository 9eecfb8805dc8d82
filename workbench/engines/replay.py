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

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.engines.base import DeviceInfo, EngineDeclarations, FeasibilityContext
from workbench.engines.hf.engine import HFEngine


class ReplayOptions(BaseModel):
    """`engine_options:` of a replay study."""

    model_config = ConfigDict(extra="forbid")
    grid: str = Field(description="the recorded grid file (JSON Lines), relative to the study file")


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Any:
    from workbench.gridfile import load_grid

    return load_grid(path)


def grid_for(options: ReplayOptions, study_dir: str | None) -> Any:
    """The grid a study's options name (cached while the file is unchanged)."""
    p = Path(options.grid).expanduser()
    if not p.is_absolute() and study_dir:
        p = Path(study_dir) / p
    p = p.resolve()
    if not p.is_file():
        from workbench.gridfile import GridError

        raise GridError(f"engine_options.grid: no grid file at {p}")
    return _load(str(p), p.stat().st_mtime)


def _check(options: ReplayOptions, study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    from workbench.gridfile import GridError

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


class ReplayEngine(EngineDeclarations):
    """Declarations only (knobs, options, feasibility): nothing is built or opened; trials are answered
    by `ReplayExecutor` from the grid."""

    name = "replay"
    version = "1"
    knobs = HFEngine.knobs
    options_model = ReplayOptions
    #: trials are answered by `workbench.trials.orchestrator.executors.ReplayExecutor` (no worker, no device)
    executor = "replay"

    @classmethod
    def grid(cls, options: ReplayOptions, study_dir: str | None) -> Any:
        """The recorded grid the study's options name (what `ReplayExecutor` answers from)."""
        return grid_for(options, study_dir)

    @classmethod
    def check_options(
        cls, options: ReplayOptions, study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        return _check(options, study_dir)

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        grid = grid_for(cls.options_of(context), context.study_dir)
        return None if grid.find(knobs) is not None else grid.why_missing(knobs)
