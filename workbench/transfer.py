"""Bring a study run elsewhere into this Optuna storage and MLflow: `workbench import`.

GPU nodes often reach neither the team's database nor its MLflow server. There the study runs with
its own SQLite storage and `--tracking-uri none`; its trial folders and database are copied back,
and `import` recreates every trial here (same numbers, knobs, values, constraints, states) with one
MLflow run per measured trial, logged from the trial's own result file, and the links both ways.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from workbench.plots import study_figures, trial_figures
from workbench.study import (
    TrialRecord,
    baseline_trial,
    constraint_names,
    load_study,
    make_storage,
    open_study,
    redact,
    stored_spec,
    study_summary,
    trial_dashboard_url,
)
from workbench.tracking import StudySummary, link_url_attrs, make_tracker
from workbench.trials.result import TrialResult
from workbench.types import InputError


class TransferError(InputError):
    """The study cannot be imported here (for example it already holds trials in this storage)."""


def local_result_path(recorded: str, results_dir: Path) -> Path:
    """Where a trial's result.json is here: the part of its recorded path from `studies/` on, under `results_dir`."""
    parts = Path(recorded).parts
    if "studies" in parts:
        i = len(parts) - 1 - parts[::-1].index("studies")
        candidate = results_dir.joinpath(*parts[i:])
        if candidate.exists():
            return candidate
    return Path(recorded)


def import_study(
    name: str,
    source: str,
    results_dir: str | Path,
    storage: str,
    tracking_uri: str | None,
) -> optuna.Study:
    """Copy study `name` from storage URL `source` into `storage`, logging each trial to MLflow."""
    src = load_study(name, source)
    spec = stored_spec(src)
    store = make_storage(storage)
    dst = open_study(spec, store)
    if dst.trials:
        raise TransferError(
            f"study {name!r} already holds {len(dst.trials)} trials in {storage}; import into a new storage or name"
        )
    for k, v in src.user_attrs.items():
        if k not in ("spec", "spec_path"):
            dst.set_user_attr(k, v)
    dst.set_user_attr("imported_from", source)
    tracker = make_tracker(tracking_uri, spec, redact(storage), constraint_names(spec), trial_figures)
    base = baseline_trial(src)
    base_metrics = TrialRecord.read(base).metrics if base else None
    dst_id = store.get_study_id_from_name(name)
    run_ids: dict[int, str] = {}
    for t in src.trials:
        attrs = dict(t.user_attrs)
        res = _result(spec, t, attrs, Path(results_dir))
        rec = TrialRecord.read(attrs)
        if res is not None:
            rid = tracker.start_trial(
                t.number,
                rec.knobs_or(t.params),
                rec.baseline,
                dashboard_url=trial_dashboard_url(dst_id, t.number),
            )
            tracker.log_result(rid, res, t.number, base_metrics, list(t.constraints.values()))
            if rid:
                run_ids[t.number] = rid
                attrs.update(link_url_attrs(tracker, rid))
        elif rec.duplicate_of in run_ids:
            attrs.update(link_url_attrs(tracker, run_ids[rec.duplicate_of]))
        dst.add_trial(_copy(t, attrs))
    summary = StudySummary(**study_summary(dst, [o.metric for o in spec.objectives]))
    tracker.log_study(summary, lambda: study_figures(dst))
    return dst


def _result(spec: Any, t: FrozenTrial, attrs: dict[str, Any], results: Path) -> TrialResult | None:
    """The trial's result: its result file found here, else what Optuna kept (marked as such in `attrs`)."""
    rec = TrialRecord.read(attrs)
    if t.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) or rec.is_duplicate:
        return None
    path = local_result_path(rec.result_path or "", results)
    if path.is_file():
        attrs["result_path"] = str(path)
        return TrialResult.read(path)
    if not rec.status:
        return None
    attrs["result_path"] = ""  # the trial folder did not come back: what Optuna kept, marked as such
    attrs["result_file"] = "not available: imported from the Optuna storage only"
    return _from_record(spec, t, rec)


def _from_record(spec: Any, t: FrozenTrial, rec: TrialRecord) -> TrialResult:
    from workbench.trials.result import Failure

    failure = Failure(kind=rec.failure_kind, message=rec.failure or "") if rec.failure_kind else None
    return TrialResult(
        study=spec.name,
        trial_id=f"{t.number:04d}",
        status=rec.status,
        failure=failure,
        engine=spec.engine,
        model=spec.model_source,
        knobs=rec.knobs_or(t.params),
        metrics=rec.metrics,
        environment={"note": "result file not available; metrics from the Optuna storage"},
    )


def _copy(t: FrozenTrial, user_attrs: dict[str, Any]) -> FrozenTrial:
    """The same trial with its times, for `Study.add_trial` (which gives it this study's next number)."""
    state = t.state if t.state.is_finished() else TrialState.FAIL  # a trial left running there never finished
    copy = optuna.trial.create_trial(
        state=state,
        values=t.values if state == TrialState.COMPLETE else None,
        params=t.params,
        distributions=t.distributions,
        user_attrs=user_attrs,
        system_attrs=t.system_attrs,
        intermediate_values=t.intermediate_values,
    )
    copy.datetime_start = t.datetime_start
    copy.datetime_complete = t.datetime_complete or t.datetime_start
    return copy
