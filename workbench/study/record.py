"""What Optuna keeps of a trial, typed: one model written to and read from the trial's user attrs.

Every module that reads a trial (inspection, export, transfer, the CLI) goes through
`TrialRecord.read(frozen)` instead of string keys; the objective writes through `TrialRecord.write`.
The attribute names are the stored keys, so studies written before this model read the same.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from pydantic import BaseModel, ConfigDict, Field


class TrialRecord(BaseModel):
    """A trial's knobs, results and links. Only the fields given are written (a trial is recorded in steps)."""

    model_config = ConfigDict(extra="ignore")

    #: every knob of the trial, resolved (searched ones, fixed ones, the engine's defaults)
    knobs: dict[str, Any] | None = None
    #: the engine's default configuration, the study's reference point
    baseline: bool = False
    #: the trial's numeric metrics (COMPLETE trials)
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: the constraint values in the study's order (<= 0 feasible)
    constraints: list[float] | None = None
    #: why a constraint could not be evaluated as written (no baseline to compare with)
    constraint_note: str | None = None
    #: these knobs were measured by that earlier trial; its results were copied here
    duplicate_of: int | None = None
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None
    #: the trial's result.json
    result_path: str | None = None
    #: why there is no result file (a study imported without its trial folders)
    result_file: str | None = None
    status: str | None = None
    failure: str | None = None
    failure_kind: str | None = None
    build_key: str | None = None
    #: the key of the weights GSM8K was measured on (a later trial with the same key reuses it)
    accuracy_key: str | None = None
    #: host, pid, CUDA_VISIBLE_DEVICES and worker id of the process that ran it
    worker: dict[str, str] | None = None
    #: where the trial's time went outside the worker (seconds per step)
    orchestration_s: dict[str, float] | None = None

    @classmethod
    def read(cls, trial: FrozenTrial | optuna.Trial | dict[str, Any]) -> TrialRecord:
        """The record of a trial (or of a user-attrs dict); unknown keys are ignored."""
        attrs = trial if isinstance(trial, dict) else trial.user_attrs
        return cls.model_validate(attrs)

    def write(self, trial: optuna.Trial) -> None:
        """Set the fields given to this record (not the defaults) as the trial's user attrs."""
        for key, value in self.model_dump(mode="json", exclude_unset=True).items():
            trial.set_user_attr(key, value)

    def attrs(self) -> dict[str, Any]:
        """The user-attrs dict of the fields given (for `FrozenTrial` copies)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None

    def knobs_or(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.knobs if self.knobs is not None else params


def finite_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers worth keeping in the storage (no NaN, no text)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not math.isnan(v)}
