"""Reading a study: its baseline, its best trials, one row per trial, links to optuna-dashboard.

The best trials are Optuna's own Pareto front (`Study.best_trials`, which already leaves out
infeasible trials when constraints are set) minus the trials that only repeated an earlier one.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from workbench.study.constraints import is_feasible
from workbench.study.record import TrialRecord


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return next((t for t in done if TrialRecord.read(t).baseline), None)


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best feasible trial (one objective) or the feasible Pareto set (several), by trial number."""
    front = [t for t in study.best_trials if not TrialRecord.read(t).is_duplicate]
    return sorted(front, key=lambda t: t.number)


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial `number`, or the best one: the single best, or of a Pareto set the best on the first objective."""
    if number is not None:
        trials = study.get_trials(deepcopy=False)
        if not 0 <= number < len(trials):
            raise KeyError(f"study {study.study_name!r} has no trial {number} (it has {len(trials)})")
        t = trials[number]
        if t.state != TrialState.COMPLETE:
            raise KeyError(f"trial {number} of {study.study_name!r} is {t.state.name}, not COMPLETE")
        return t
    best = best_trials(study)
    if not best:
        raise KeyError(f"study {study.study_name!r} has no feasible completed trial yet")
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(best, key=lambda t: t.values[0], reverse=maximize)[0]


def best_records(best: list[FrozenTrial]) -> list[dict[str, Any]]:
    """The best trials as plain records (`workbench best --json`), read through `TrialRecord`."""
    out = []
    for t in best:
        r = TrialRecord.read(t)
        out.append(
            {
                "number": t.number,
                "values": t.values,
                "knobs": r.knobs,
                "metrics": r.metrics,
                "mlflow_run_id": r.mlflow_run_id,
            }
        )
    return out


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: state, knobs, objective and key metrics, failure cause."""
    base = baseline_trial(study)
    base_m = TrialRecord.read(base).metrics if base else {}
    rows = []
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.read(t)
        row = {
            "number": t.number,
            "state": t.state.name,
            "baseline": r.baseline,
            "feasible": is_feasible(t) if t.state == TrialState.COMPLETE else None,
            "knobs": r.knobs_or(t.params),
            "metrics": r.metrics,
            "values": t.values,
            "failure": r.failure,
            "failure_kind": r.failure_kind,
            "duplicate_of": r.duplicate_of,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "mlflow_run_id": r.mlflow_run_id,
            "mlflow_run_url": r.mlflow_run_url,
        }
        if base_m.get("output_tok_s") and r.metrics.get("output_tok_s"):
            row["vs_baseline"] = r.metrics["output_tok_s"] / base_m["output_tok_s"]
        rows.append(row)
    return rows


def trials_frame(study: optuna.Study) -> Any:
    """The trials as a pandas DataFrame: one row per trial, knobs and metrics as columns (for notebooks and plots).

    Built from `trial_rows` rather than `Study.trials_dataframe`, whose `user_attrs_knobs` column
    holds a dict: these columns are the knob and metric names themselves.
    """
    import pandas as pd

    records = []
    for r in trial_rows(study):
        rec = {k: v for k, v in r.items() if k not in ("knobs", "metrics", "values")}
        rec.update(r["knobs"] or {})
        rec.update(r["metrics"] or {})
        records.append(rec)
    return pd.DataFrame.from_records(records)


def study_summary(study: optuna.Study, objectives: list[str]) -> dict[str, Any]:
    """What the study's MLflow parent run gets at the end: counts, best values, every row, the best set."""
    best = best_trials(study)
    rows = trial_rows(study)
    counts = {
        s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
        for s in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    }
    best_values: dict[str, float] = {}
    ratio = None
    if len(best) == 1 and best[0].values:
        best_values = dict(zip(objectives, best[0].values, strict=True))
        ratio = next((r.get("vs_baseline") for r in rows if r["number"] == best[0].number), None)
    best_rows = []
    for t in best:
        rec = TrialRecord.read(t)
        best_rows.append(
            {"number": t.number, "values": t.values, "knobs": rec.knobs, "mlflow_run_id": rec.mlflow_run_id}
        )
    return {
        "counts": counts,
        "best_values": best_values,
        "best_vs_baseline": ratio,
        "rows": rows,
        "best": best_rows,
    }


def dashboard_base_url() -> str:
    """Where optuna-dashboard is served (`workbench dashboard` default), for links from MLflow runs."""
    from workbench.settings import dashboard_url

    return dashboard_url()


def trial_dashboard_url(study_id: int, number: int) -> str:
    """A trial's page in optuna-dashboard (`study_id` from `BaseStorage.get_study_id_from_name`)."""
    return f"{dashboard_base_url()}/dashboard/studies/{study_id}/trials?numbers={number}"


def study_id(storage: optuna.storages.BaseStorage, name: str) -> int:
    return storage.get_study_id_from_name(name)
