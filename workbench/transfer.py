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

from workbench.trials.result import TrialResult


class ImportError_(ValueError):
    pass


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
    from workbench.study import (
        ATTR_BASELINE,
        ATTR_KNOBS,
        load_study,
        open_study,
        stored_spec,
        trial_dashboard_url,
    )
    from workbench.tracking import link_url_attrs, make_tracker

    src = load_study(name, source)
    spec = stored_spec(src)
    dst = open_study(spec, storage)
    if dst.trials:
        raise ImportError_(
            f"study {name!r} already holds {len(dst.trials)} trials in {storage}; import into a new storage or name"
        )
    for k, v in src.user_attrs.items():
        if k not in ("spec", "spec_path"):
            dst.set_user_attr(k, v)
    dst.set_user_attr("imported_from", source)
    tracker = make_tracker(tracking_uri, spec, storage_url=storage)
    results = Path(results_dir)
    base = next(
        (t for t in src.trials if t.user_attrs.get(ATTR_BASELINE) and t.state == TrialState.COMPLETE), None
    )
    base_metrics = base.user_attrs.get("metrics") if base else None
    run_ids: dict[int, str] = {}
    for t in src.trials:
        attrs = dict(t.user_attrs)
        res = None
        if (
            t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
            and "duplicate_of" not in attrs
        ):
            path = local_result_path(attrs.get("result_path", ""), results)
            if path.is_file():
                res = TrialResult.read(path)
                attrs["result_path"] = str(path)
            elif attrs.get("status"):  # the trial folder did not come back: what Optuna kept, marked as such
                res = _from_attrs(spec, t, attrs)
                attrs["result_path"] = ""
                attrs["result_file"] = "not available: imported from the Optuna storage only"
        if res is not None:
            rid = tracker.start_trial(t.number, attrs.get(ATTR_KNOBS, t.params), bool(attrs.get(ATTR_BASELINE)),
                                      dashboard_url=trial_dashboard_url(dst, t.number))  # fmt: skip
            constraints = list(t.system_attrs.get("constraints") or [])
            tracker.log_result(rid, res, t.number, base_metrics, constraints)
            if rid:
                run_ids[t.number] = rid
                attrs.update(link_url_attrs(tracker, rid))
        elif "duplicate_of" in attrs and attrs["duplicate_of"] in run_ids:
            attrs.update(link_url_attrs(tracker, run_ids[attrs["duplicate_of"]]))
        dst.add_trial(_copy(t, attrs))
    tracker.log_study(dst, spec)
    return dst


def _from_attrs(spec: Any, t: FrozenTrial, attrs: dict[str, Any]) -> TrialResult:
    from workbench.trials.result import Failure

    failure = None
    if attrs.get("failure_kind"):
        failure = Failure(kind=attrs["failure_kind"], message=attrs.get("failure", ""))
    return TrialResult(
        study=spec.name,
        trial_id=f"{t.number:04d}",
        status=attrs["status"],
        failure=failure,
        engine=spec.engine,
        model=spec.model_source,
        knobs=attrs.get("knobs", t.params),
        metrics=attrs.get("metrics", {}),
        environment={"note": "result file not available; metrics from the Optuna storage"},
    )


def _copy(t: FrozenTrial, user_attrs: dict[str, Any]) -> FrozenTrial:
    """The same trial with its times, for `Study.add_trial` (which gives it this study's next number)."""
    state = t.state if t.state.is_finished() else TrialState.FAIL  # a trial left running there never finished
    return FrozenTrial(
        number=t.number,
        state=state,
        value=None,
        values=t.values if state == TrialState.COMPLETE else None,
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete or t.datetime_start,
        params=t.params,
        distributions=t.distributions,
        user_attrs=user_attrs,
        system_attrs=t.system_attrs,
        intermediate_values=t.intermediate_values,
        trial_id=t._trial_id,
    )
