"""Recorded grids: every combination of a study's knob choices measured once, kept as a dataset.

A grid file is JSON Lines. The first line is the header: what was measured (engine, model, workload,
the knob axes and the fixed knobs), where (the environment) and how (the command). Each further line
is one point: the full knob values, the status, the flat metrics (the same names as a trial's) and
the cause of a failure. Lines are appended as points finish, so a recording stopped at any time is a
valid, smaller dataset and running the same command again resumes it.

The `replay` engine answers trials from such a file (workbench/engines/replay.py), which makes
search strategies comparable offline and reproducibly (benchmarks/sampler_replay.py).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.gridfile import GRID_SCHEMA, GRID_SCHEMA_VERSION, Grid, GridError, load_grid  # noqa: F401
from workbench.spec import StudySpec

#: engine_config entries kept with each point (the rest stays in the trial's own result)
_CONFIG_KEYS = ("kv_cache_tokens", "kv_bytes_per_token", "weights_bytes", "num_blocks", "model_reused")


def axes(spec: StudySpec) -> dict[str, list[Any]]:
    """The knob values the grid covers: the study's search space (choices, or ranges with a step)."""
    from workbench.study import grid as sampler_grid

    return sampler_grid(spec)


def points(spec: StudySpec) -> list[dict[str, Any]]:
    """Every combination, with the other knobs resolved; build knobs vary slowest so a model is loaded once."""
    from workbench.engines import get_engine_class
    from workbench.trials.knobs import resolve_knobs

    ax = axes(spec)
    knobs = get_engine_class(spec.engine).knobs
    order = sorted(ax, key=lambda n: (not knobs[n].build_time, list(ax).index(n)))
    return [
        resolve_knobs(spec, dict(zip(order, combo, strict=True)))
        for combo in itertools.product(*(ax[n] for n in order))
    ]


def header(spec: StudySpec, environment: dict[str, Any], command: str) -> dict[str, Any]:
    from workbench.estimate import read_config
    from workbench.trials.knobs import baseline_knobs

    return {
        "schema": GRID_SCHEMA,
        "schema_version": GRID_SCHEMA_VERSION,
        "study": spec.name,
        "engine": spec.engine,
        "model": {
            **spec.model.model_dump(mode="json", exclude_none=True),
            "source": spec.model_source,
            "config": read_config(spec.model_source),
        },
        "workload": spec.workload.model_dump(mode="json"),
        "axes": axes(spec),
        "fixed": spec.fixed_knobs(),
        "baseline": baseline_knobs(spec),  # the baseline trial's knobs, fixed knobs included
        "environment": environment,
        "command": command,
        "started": _now(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def best_point(grid: Grid, spec: StudySpec) -> dict[str, Any] | None:
    """The best point under the study's constraints (single objective), as the search should find it."""
    from workbench.study import constraint_values

    if len(spec.objectives) != 1:
        raise GridError("the best point of a grid is defined for one objective")
    obj = spec.objectives[0]
    from workbench.trials.knobs import baseline_knobs

    base = grid.find(baseline_knobs(spec))
    base_metrics = base["metrics"] if base and base["status"] == "COMPLETE" else None
    ok = [
        p
        for p in grid.points
        if p["status"] == "COMPLETE"
        and all(c <= 0 for c in constraint_values(spec, p["metrics"], base_metrics))
    ]
    if not ok:
        return None
    sign = 1 if obj.direction == "maximize" else -1
    return max(ok, key=lambda p: sign * p["metrics"][obj.metric])


def _check_same_grid(grid: Grid, head: dict[str, Any]) -> None:
    for key in ("engine", "axes", "fixed", "workload"):
        if grid.header.get(key) != head.get(key):
            raise GridError(
                f"{grid.path}: this file records another grid ({key} differs: {grid.header.get(key)!r} vs the "
                f"study's {head.get(key)!r}); use another --out file"
            )
    for key in ("id", "path", "source", "dtype", "load_format"):
        if grid.header["model"].get(key) != head["model"].get(key):
            raise GridError(
                f"{grid.path}: recorded for model.{key}={grid.header['model'].get(key)!r}, not {head['model'].get(key)!r}"
            )


def point_record(res: Any, knobs: dict[str, Any]) -> dict[str, Any]:
    """What a grid keeps of one trial result."""
    bench = res.bench or {}
    return {
        "knobs": knobs,
        "status": res.status,
        "metrics": {k: v for k, v in res.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
        "failure": res.failure.model_dump(mode="json", exclude={"detail"}) if res.failure else None,
        "engine_config": {k: res.engine_config[k] for k in _CONFIG_KEYS if k in res.engine_config},
        "roofline": bench.get("roofline"),
        "memory": bench.get("memory"),
        "build": {k: res.build.get(k) for k in ("build_key", "build_s", "cache_hit") if k in res.build},
        "timings_s": res.timings_s,
        "recorded": _now(),
    }


def record(
    spec: StudySpec,
    out: str | Path,
    *,
    reuse_model: bool = False,
    budget_s: float | None = None,
    command: str = "",
    log: Callable[[str], None] = print,
) -> Grid:
    """Measure every point not yet in `out` (in grid order) until done or `budget_s` has passed."""
    from workbench.trials.orchestrator.environment import collect_environment, detect_device

    out = Path(out)
    device = detect_device(spec.trial.device)
    head = header(spec, collect_environment(device), command)
    if out.exists() and out.stat().st_size:
        grid = load_grid(out)
        _check_same_grid(grid, head)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(head) + "\n")
        grid = Grid(out, head)
    todo = [k for k in points(spec) if grid.find(k) is None]
    log(f"grid {out}: {grid.size()} points, {len(grid.points)} recorded, {len(todo)} to measure")
    measure = _in_process(spec, device) if reuse_model else _subprocess(spec, device)
    t0 = time.monotonic()
    try:
        for i, knobs in enumerate(todo):
            if budget_s is not None and time.monotonic() - t0 > budget_s:
                log(f"time budget of {budget_s:g} s spent: {len(todo) - i} points left; run again to resume")
                break
            res = measure(knobs, f"grid-{len(grid.points):04d}")
            rec = point_record(res, knobs)
            with out.open("a") as f:
                f.write(json.dumps(rec, allow_nan=False) + "\n")
            grid.points.append(rec)
            grid._idx = None  # type: ignore[attr-defined]
            shown = {n: knobs[n] for n in grid.axis_names}
            val = rec["metrics"].get(spec.objectives[0].metric)
            log(
                f"[{len(grid.points)}/{grid.size()}] {res.status} {shown} "
                + (
                    f"{spec.objectives[0].metric}={val:.4g}"
                    if val is not None
                    else (res.failure.message[:160] if res.failure else "")
                )
            )
    finally:
        del measure  # frees the in-process model pool, if any
    return grid


def _subprocess(spec: StudySpec, device: Any) -> Callable[[dict[str, Any], str], Any]:
    """Each point is a normal trial: its own worker process (isolated, slower)."""
    from workbench.settings import workbench_home
    from workbench.trials.orchestrator.run import run_trial

    def measure(knobs: dict[str, Any], tid: str) -> Any:
        return run_trial(
            spec, knobs, trial_id=tid, device=device, out_dir=workbench_home() / "grids" / spec.name / tid
        )

    return measure


def _in_process(spec: StudySpec, device: Any) -> Callable[[dict[str, Any], str], Any]:
    """The worker's measurement in this process, keeping the loaded model between points that share it.

    Loading (or randomly initialising) an 8 B model costs more than measuring one configuration, so a
    grid on a GPU reuses it (`InProcessExecutor` and its model pool); everything after the load is the
    trial worker's code. Engines without a model pool load as usual.
    """
    from workbench.settings import workbench_home
    from workbench.trials.orchestrator.executors import InProcessExecutor
    from workbench.trials.orchestrator.run import run_trial

    executor = InProcessExecutor(timeout_s=spec.trial.timeout_s)

    def measure(knobs: dict[str, Any], tid: str) -> Any:
        out_dir = workbench_home() / "grids" / spec.name / tid
        return run_trial(spec, knobs, trial_id=tid, device=device, out_dir=out_dir, executor=executor)

    return measure
