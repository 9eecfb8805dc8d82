"""The tune loop: open (or resume) the study, queue the baseline, run trials until the budget is met.

The first trial is the engine's default configuration (the baseline); a baseline that never
completed (interrupted, killed) is queued again. A process killed earlier left its trial RUNNING:
Optuna's heartbeat fails it (and queues a clean retry) before new work starts, and the tracker's runs
are made to agree with the Optuna trials, when `tune` starts and when it ends
(`workbench.study.recovery`). The budget counts distinct measured configurations: a trial that
repeats measured knobs copies their results and costs no measurement and no budget. At the end the
tracker gets the study's summary and, when the caller passes one, a figures factory (figures live
above this layer: `workbench.plots`); the study's run is closed whatever happens.
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
from workbench.study.recovery import PROVISIONAL, frozen_params, killed, trial_views
from workbench.study.space import contains, space_size
from workbench.study.storage import as_storage, open_study, quiet_experimental, redact
from workbench.tracking import StudySummary, Tracker, TrialFigures, make_tracker

#: makes a study's figures by name (e.g. `workbench.plots.study_figures`); passed in by the caller
StudyFigures = Callable[[optuna.Study], dict[str, Any]]


@dataclass
class TuneReport:
    study: optuna.Study
    ran: list[int] = field(default_factory=list)
    interrupted: bool = False
    #: what the user should know about how the study ended (a budget the space cannot fill, ...)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Budget:
    """When a study is done: `target` distinct configurations measured (or the whole space)."""

    target: int
    #: distinct configurations in the search space (None: continuous)
    size: int | None = None

    def reached(self, study: optuna.Study) -> bool:
        done = _done(study)
        if len(done) >= self.target:
            return True
        # a space with fewer points than the budget: its copies fill the rest, as before
        return self.exhausted(done) and _finished(study) >= self.target

    def exhausted(self, done: list[FrozenTrial]) -> bool:
        full = {frozen_params(t) for t in done if len(t.params) == len(t.distributions) > 0}
        return self.size is not None and len(full) >= self.size

    def copies_exceeded(self, study: optuna.Study) -> bool:
        """The sampler keeps proposing measured knobs: stop rather than loop (said in the report)."""
        copies = [t for t in study.get_trials(deepcopy=False) if TrialRecord.read(t).is_duplicate]
        return len(copies) >= max(50, 5 * self.target)


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
    """Run the study until it holds `n_trials` distinct measured configurations, or `timeout` passes.

    `storage` and `tracking_uri` default to `workbench.settings` (environment, then project root);
    `figures(study)` makes the figures logged to the study's tracker run at the end (none if None),
    `trial_figures(result)` those logged with each trial's run (`workbench.plots.trial_figures`).
    """
    from workbench.trials.orchestrator.environment import detect_device

    url = settings.storage_url(storage) if storage is None or isinstance(storage, str) else storage
    store = as_storage(url)
    study = open_study(spec, store)
    tracker = make_tracker(
        tracking_uri,
        spec,
        storage_url=redact(str(url)),
        constraints=constraint_names(spec),
        trial_figures=trial_figures,
    )
    report = TuneReport(study)
    try:
        _recover(study, tracker)
        objective = Objective(
            spec,
            study,
            tracker,
            detect_device(spec.trial.device),
            study_id=store.get_study_id_from_name(spec.name),
            rerun_duplicates=rerun_duplicates,
        )
        report.notes += enqueue_baseline(study, spec, objective.dists)
        target = n_trials if n_trials is not None else spec.budget.n_trials
        budget = Budget(target, space_size(objective.dists))
        if not budget.reached(study):
            try:
                study.optimize(
                    objective,
                    timeout=timeout,
                    catch=(TrialFailed,),
                    gc_after_trial=False,
                    callbacks=[_stopper(report, budget, on_trial, should_stop)],
                )
            except KeyboardInterrupt:
                report.interrupted = True
        _finish(study, spec, tracker, figures, report)
    except BaseException:
        report.interrupted = True  # a second Ctrl-C (or an error) while ending: the study's run still closes
        _close(study, tracker)
        raise
    return report


def _finish(
    study: optuna.Study, spec: StudySpec, tracker: Tracker, figures: StudyFigures | None, report: TuneReport
) -> None:
    tracker.reconcile(trial_views(study))
    summary = StudySummary(**study_summary(study, [o.metric for o in spec.objectives]))
    tracker.log_study(summary, (lambda: figures(study)) if figures else None, interrupted=report.interrupted)


def _close(study: optuna.Study, tracker: Tracker) -> None:
    """Best effort on the way out: runs agree with trials, the study's run ends KILLED."""
    import contextlib

    with contextlib.suppress(Exception):
        tracker.reconcile(trial_views(study))
    with contextlib.suppress(Exception):
        tracker.close_study(interrupted=True)


def _recover(study: optuna.Study, tracker: Tracker) -> None:
    """A process killed earlier: fail (and retry) its trial now; the tracker's runs agree with Optuna."""
    with quiet_experimental():
        optuna.storages.fail_stale_trials(study)
    tracker.reconcile(trial_views(study))


def _stopper(
    report: TuneReport,
    budget: Budget,
    on_trial: Callable[[FrozenTrial], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The callback after each trial: report it, and stop at the budget, on many failures, or when asked."""

    def after(study: optuna.Study, frozen: FrozenTrial) -> None:
        report.ran.append(frozen.number)
        if on_trial is not None:
            on_trial(frozen)
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if budget.copies_exceeded(study):
            report.notes.append(
                f"stopped with {len(_done(study))} of {budget.target} distinct configurations measured: "
                "the sampler keeps proposing knobs measured before (a narrow space, or a converged search)"
            )
        if (
            budget.reached(study)
            or budget.copies_exceeded(study)
            or failed >= max(budget.target, 3) * 2
            or (should_stop is not None and should_stop())
        ):
            study.stop()

    return after


def enqueue_baseline(study: optuna.Study, spec: StudySpec, dists: dict[str, BaseDistribution]) -> list[str]:
    """The engine's default configuration is the first trial, so every result reads as a ratio to it.

    Queued again while no baseline completed (interrupted, killed, failed), up to `BASELINE_TRIES`
    failures that were not interruptions; then the returned note says so (gates against it fail).
    """
    records = [(t, TrialRecord.read(t)) for t in study.get_trials(deepcopy=False)]
    bases = [(t, r) for t, r in records if r.baseline]
    if any(t.state != TrialState.FAIL for t, _ in bases):
        return []  # complete, pruned, running or queued
    broken = [t for t, r in bases if not killed(r)]
    if len(broken) >= BASELINE_TRIES:
        return [
            f"the baseline failed {len(broken)} times (last: trial {broken[-1].number}); it is not queued again, "
            "and constraints against the baseline count as violated"
        ]
    from workbench.trials.knobs import resolve_knobs

    knobs = resolve_knobs(spec, {})
    params = {k: v for k, v in knobs.items() if k in dists and contains(dists[k], v)}
    attrs = {**TrialRecord(baseline=True, knobs=knobs).attrs(), **PROVISIONAL}
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
    return (
        [f"the baseline did not complete before (trial {bases[-1][0].number}): queued again"] if bases else []
    )


#: a baseline that fails this many times for a reason of its own (not an interruption) is not queued again
BASELINE_TRIES = 2


def _done(study: optuna.Study) -> list[FrozenTrial]:
    """One trial per distinct configuration measured (complete or pruned, not a copy)."""
    seen: dict[str, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        r = TrialRecord.read(t)
        if not r.is_duplicate:
            seen.setdefault(repr(sorted((r.knobs_or(t.params)).items())), t)
    return list(seen.values())


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
