"""The tune loop: open (or resume) the study, queue the baseline, run trials until the budget is met.

The first trial is the engine's default configuration (the baseline). A process killed earlier
left its trial RUNNING: Optuna's heartbeat fails it (and queues a retry) before new work starts,
and its tracker run is failed too. At the end the tracker gets the study's summary and, when the
caller passes one, a figures factory (figures live above this layer: `workbench.plots`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from workbench import settings
from workbench.spec import StudySpec
from workbench.study.constraints import constraint_names
from workbench.study.errors import TrialFailed
from workbench.study.inspect import study_summary
from workbench.study.objective import Objective
from workbench.study.record import TrialRecord
from workbench.study.space import contains
from workbench.study.storage import as_storage, open_study, quiet_experimental, redact
from workbench.tracking import StudySummary, Tracker, TrialFigures, make_tracker

#: makes a study's figures by name (e.g. `workbench.plots.study_figures`); passed in by the caller
StudyFigures = Callable[[optuna.Study], dict[str, Any]]


@dataclass
class TuneReport:
    study: optuna.Study
    ran: list[int] = field(default_factory=list)
    interrupted: bool = False


def tune(
    spec: StudySpec,
    storage: str | optuna.storages.BaseStorage | None = None,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    rerun_duplicates: bool = False,
    on_trial: Callable[[FrozenTrial], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    figures: StudyFigures | None = None,
    trial_figures: TrialFigures | None = None,
) -> TuneReport:
    """Run the study until it holds `n_trials` finished (complete or pruned) trials, or `timeout` passes.

    `storage` and `tracking_uri` default to `workbench.settings` (environment, then project root);
    `figures(study)` makes the figures logged to the study's tracker run at the end (none if None),
    `trial_figures(result)` those logged with each trial's run (`workbench.plots.trial_figures`).
    """
    from workbench.trials.environment import detect_device

    url = settings.storage_url(storage) if storage is None or isinstance(storage, str) else storage
    store = as_storage(url)
    study = open_study(spec, store)
    tracker = make_tracker(tracking_uri, spec, redact(str(url)), constraint_names(spec), trial_figures)
    _recover(study, tracker)
    objective = Objective(
        spec, study, tracker, detect_device(spec.trial.device),
        study_id=store.get_study_id_from_name(spec.name), rerun_duplicates=rerun_duplicates,
    )  # fmt: skip
    enqueue_baseline(study, spec, objective.dists)
    report = TuneReport(study)
    target = n_trials if n_trials is not None else spec.budget.n_trials
    if _finished(study) < target:
        stop = _stopper(report, target, on_trial, should_stop)
        try:
            study.optimize(
                objective, timeout=timeout, callbacks=[stop], catch=(TrialFailed,), gc_after_trial=False
            )
        except KeyboardInterrupt:
            report.interrupted = True
    summary = StudySummary(**study_summary(study, [o.metric for o in spec.objectives]))
    tracker.log_study(summary, (lambda: figures(study)) if figures else None, interrupted=report.interrupted)
    return report


def _recover(study: optuna.Study, tracker: Tracker) -> None:
    """A process killed earlier: fail (and retry) its trial now, and fail its tracker run."""
    with quiet_experimental():
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    tracker.reconcile(r for t in failed if (r := TrialRecord.read(t).mlflow_run_id))


def _stopper(
    report: TuneReport,
    target: int,
    on_trial: Callable[[FrozenTrial], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The callback after each trial: report it, and stop at the budget, on many failures, or when asked."""

    def after(study: optuna.Study, frozen: FrozenTrial) -> None:
        report.ran.append(frozen.number)
        if on_trial is not None:
            on_trial(frozen)
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if (
            _finished(study) >= target
            or failed >= max(target, 3) * 2
            or (should_stop is not None and should_stop())
        ):
            study.stop()

    return after


def enqueue_baseline(study: optuna.Study, spec: StudySpec, dists: dict[str, BaseDistribution]) -> None:
    """The engine's default configuration is the first trial, so every result reads as a ratio to it."""
    if any(TrialRecord.read(t).baseline for t in study.get_trials(deepcopy=False)):
        return
    from workbench.trials.knobs import resolve_knobs

    knobs = resolve_knobs(spec, {})
    params = {k: v for k, v in knobs.items() if k in dists and contains(dists[k], v)}
    study.enqueue_trial(
        params, user_attrs=TrialRecord(baseline=True, knobs=knobs).attrs(), skip_if_exists=False
    )


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
