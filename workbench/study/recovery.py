"""What a killed or interrupted `tune` leaves behind, put right: causes, clean retries, both stores agreeing.

A process killed by `kill -9` cannot record why its trial failed, and Optuna refuses user attrs on a
finished trial. So every trial carries its cause *before* it can die (`PROVISIONAL`): a trial that
completes overwrites it, a trial failed later by Optuna's heartbeat keeps it. A failed trial is
retried (at most `MAX_RETRY` times) as a fresh WAITING trial with the same knobs and none of the dead
trial's links (MLflow run, worker pid). `reconcile` makes the MLflow runs match the Optuna states
in both directions; `tune` calls it when it starts and when it ends.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from workbench.study.record import TrialRecord
from workbench.tracking.base import TrialView

#: a killed trial is retried at most this many times (then the sampler may propose its knobs again)
MAX_RETRY = 2
#: the cause every trial carries until it records its own: what the heartbeat finds after a kill
PROVISIONAL = {
    "failure_kind": "crash",
    "failure": "the process running this trial stopped before it recorded a result (killed, or lost its "
    "heartbeat); Optuna's heartbeat failed the trial and queued a retry",
}
#: the user attrs a retry keeps: what the trial is, not what happened to it
KEPT_ON_RETRY = ("knobs", "baseline")


class CleanRetry(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, without the dead trial's links (its MLflow run, its worker)."""

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        super().__init__(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        retry_trial(study, trial, self._max_retry)


def retry_trial(study: optuna.Study, trial: FrozenTrial, max_retry: int = MAX_RETRY) -> bool:
    """Queue `trial`'s knobs again as a clean WAITING trial; False once it was retried `max_retry` times."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > max_retry:
        return False
    system_attrs = {"failed_trial": history[0], "retry_history": history}
    if "fixed_params" in trial.system_attrs:
        system_attrs["fixed_params"] = trial.system_attrs["fixed_params"]
    user_attrs = {k: trial.user_attrs[k] for k in KEPT_ON_RETRY if k in trial.user_attrs}
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={**user_attrs, **PROVISIONAL},
            system_attrs=system_attrs,
        )
    )
    return True


def killed(record: TrialRecord) -> bool:
    """The trial was stopped from outside (Ctrl-C, kill -9), not failed by what it measured."""
    return record.failure_kind == "interrupted" or record.failure == PROVISIONAL["failure"]


def trial_views(study: optuna.Study) -> list[TrialView]:
    """What the tracker needs to know of each trial to agree with Optuna (no Optuna types cross over)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.read(t)
        own = r.mlflow_run_id if not r.is_duplicate else None
        out.append(
            TrialView(
                number=t.number,
                state=t.state.name,
                run_id=own,
                failure_kind=r.failure_kind,
                failure=r.failure,
                start=t.datetime_start.timestamp() if t.datetime_start else None,
                end=t.datetime_complete.timestamp() if t.datetime_complete else None,
            )
        )
    return out


def wait_for_baseline(study: optuna.Study, number: int, timeout_s: float, poll_s: float = 1.0) -> None:
    """Another worker runs (or will run) the baseline: wait for it, so this trial's gate has its reference."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
            if t.number != number and TrialRecord.read(t).baseline
        ]
        if not pending:
            return
        time.sleep(poll_s)


def frozen_params(trial: FrozenTrial) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, repr(v)) for k, v in trial.params.items()))
