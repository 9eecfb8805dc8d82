"""Optuna studies over real trials: storage, search space, a typed trial record, the objective, the loop.

`tune(spec)` creates or resumes the study named in the spec. The first trial is the engine's
default configuration (the baseline). Every trial runs through `workbench.trials.orchestrator.run.run_trial` (a
worker subprocess) and is logged by a `workbench.tracking` sink. Infeasible combinations are pruned
before any work; failures become FAIL trials with their cause; the study always goes on.

Modules: `storage` (URLs, SQLite locking, heartbeat, open/load), `space` (distributions, grid,
samplers, suggestions), `constraints`, `record` (`TrialRecord`), `accuracy_plan`, `objective`,
`inspect` (best trials, rows, frame), `tune` (the loop), `scaleout` (many workers on one study).
"""

from __future__ import annotations

from workbench.settings import DEFAULT_STORAGE
from workbench.study.accuracy_plan import AccuracyPlan, accuracy_plan
from workbench.study.constraints import constraint_names, constraint_values, is_feasible
from workbench.study.errors import StudyMismatch, TrialFailed
from workbench.study.inspect import (
    baseline_trial,
    best_trials,
    dashboard_base_url,
    pick_trial,
    study_id,
    study_summary,
    trial_dashboard_url,
    trial_rows,
    trials_frame,
)
from workbench.study.objective import Objective, link_trial_to_run
from workbench.study.record import TrialRecord
from workbench.study.space import SAMPLERS, contains, distributions, grid, make_sampler, suggest
from workbench.study.storage import (
    load_study,
    make_storage,
    open_study,
    redact,
    stored_spec,
)
from workbench.study.tune import StudyFigures, TuneReport, enqueue_baseline, tune

__all__ = [
    "DEFAULT_STORAGE",
    "SAMPLERS",
    "AccuracyPlan",
    "Objective",
    "StudyFigures",
    "StudyMismatch",
    "TrialFailed",
    "TrialRecord",
    "TuneReport",
    "accuracy_plan",
    "baseline_trial",
    "best_trials",
    "constraint_names",
    "constraint_values",
    "contains",
    "dashboard_base_url",
    "distributions",
    "enqueue_baseline",
    "grid",
    "is_feasible",
    "link_trial_to_run",
    "load_study",
    "make_sampler",
    "make_storage",
    "open_study",
    "pick_trial",
    "redact",
    "stored_spec",
    "study_id",
    "study_summary",
    "suggest",
    "trial_dashboard_url",
    "trial_rows",
    "trials_frame",
    "tune",
]
