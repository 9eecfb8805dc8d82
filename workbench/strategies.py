"""Search strategies compared offline on a recorded grid: trials each sampler needs to get near the best.

Each run is the real `tune` loop (baseline first, repeated suggestions answered from the earlier
trial, constraints through Optuna) on a `replay` study, in an in-memory Optuna storage with MLflow
off, stopped at the first feasible trial within `within` of the grid's best feasible point. A run
counts its measurements (distinct configurations, the baseline included: what a GPU would have run)
and its Optuna trials. Used by benchmarks/sampler_replay.py and notebook 05.
"""

from __future__ import annotations

import statistics
from typing import Any

from workbench.grid import best_point
from workbench.spec import StudySpec
from workbench.study import SAMPLERS, TrialRecord, is_feasible, tune

__all__ = ["SAMPLERS", "compare", "one_run", "summary", "target"]


def target(spec: StudySpec, within: float) -> tuple[dict[str, Any], float]:
    """The grid's best feasible point and the objective value a run must reach."""
    from workbench.engines.replay import grid_for

    grid = grid_for(spec.options(), str(spec.source_path.parent) if spec.source_path else None)
    best = best_point(grid, spec)
    if best is None:
        raise ValueError(f"{grid.path}: no point of the grid meets the study's constraints")
    sign = 1 if spec.objectives[0].direction == "maximize" else -1
    return best, best["metrics"][spec.objectives[0].metric] * (1 - sign * within)


def one_run(spec: StudySpec, sampler: str, seed: int, goal: float, cap: int = 100) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from workbench.spec import validate_spec

    data = spec.model_dump(mode="json", exclude={"source_path"})
    data.update(sampler={"name": sampler, "seed": seed}, name=f"{spec.name}-{sampler}-{seed}")
    s = validate_spec(data, source_path=spec.source_path)
    storage = optuna.storages.InMemoryStorage()
    sign = 1 if spec.objectives[0].direction == "maximize" else -1

    def good(t: Any) -> bool:
        return t.state == TrialState.COMPLETE and is_feasible(t) and sign * t.values[0] >= sign * goal

    def reached() -> bool:
        return any(
            good(t) for t in storage.get_all_trials(storage.get_study_id_from_name(s.name), deepcopy=False)
        )

    rep = tune(s, storage=storage, tracking_uri="none", n_trials=cap, should_stop=reached)
    trials = rep.study.get_trials(deepcopy=False)
    hit = next((i for i, t in enumerate(trials) if good(t)), None)
    upto = trials[: hit + 1] if hit is not None else trials
    return {
        "sampler": sampler,
        "seed": seed,
        "reached": hit is not None,
        "trials": len(upto),
        "measurements": sum(1 for t in upto if not TrialRecord.read(t).is_duplicate),
    }


def compare(
    spec: StudySpec,
    samplers: tuple[str, ...] | list[str] = SAMPLERS,
    seeds: int = 20,
    within: float = 0.03,
    cap: int = 100,
    progress: bool = False,
) -> Any:
    """A DataFrame with one row per (sampler, seed) run."""
    import optuna
    import pandas as pd

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _, goal = target(spec, within)
    jobs = [(s, seed) for s in samplers for seed in range(seeds)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="sampler runs")
    return pd.DataFrame([one_run(spec, s, seed, goal, cap) for s, seed in jobs])


def summary(runs: Any, key: str = "measurements") -> dict[str, dict[str, Any]]:
    """Per sampler: how many runs reached the goal, and the median, quartiles and range of `key`."""
    out = {}
    for sampler, g in runs.groupby("sampler", sort=False):
        vals = sorted(g.loc[g.reached, key])
        row: dict[str, Any] = {"reached": int(g.reached.sum()), "runs": len(g)}
        if vals:
            q = statistics.quantiles(vals, n=4) if len(vals) > 1 else [vals[0]] * 3
            row.update(median=statistics.median(vals), p25=q[0], p75=q[2], min=vals[0], max=vals[-1])
        out[sampler] = row
    return out
