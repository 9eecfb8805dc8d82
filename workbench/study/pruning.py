"""Stopping hopeless trials early: the study's Optuna pruner, and what a running trial reports to it.

A trial's worker appends each sweep load's (or load-search probe's) flat metrics to its progress file
(`trials.worker.progress`); the executor watching it hands each line to `Reporter`, which reports the
study's single objective to Optuna (`trial.report(value, step)`) and asks `trial.should_prune()`. A
pruned trial's worker (and its server) is stopped at once; the trial is PRUNED in Optuna with the
reason and the values it reported, and its MLflow run says so. Infeasible combinations are still
pruned before any work, by feasibility.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from workbench.spec.validate import PRUNER_CLASSES


def pruner_class(name: str) -> type[optuna.pruners.BasePruner]:
    return getattr(optuna.pruners, PRUNER_CLASSES[name])


def make_pruner(spec: Any) -> optuna.pruners.BasePruner:
    """The study's pruner (`pruner:`); `none` never prunes (Optuna's NopPruner)."""
    p = spec.pruner
    if p.name == "none":
        return optuna.pruners.NopPruner()
    return pruner_class(p.name)(**p.options)


class Reporter:
    """What the executor calls for each progress line of a running trial: report, then maybe stop it."""

    def __init__(self, trial: optuna.Trial, spec: Any) -> None:
        self.trial, self.spec = trial, spec
        self.metric = spec.objectives[0].metric
        self.reported: list[tuple[int, float]] = []

    def __call__(self, step: int, metrics: dict[str, Any]) -> str | None:
        """The reason to stop the trial after this step, or None."""
        value = metrics.get(self.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None  # this step does not measure the objective (it is reported at the end)
        self.trial.report(float(value), step)
        self.reported.append((step, float(value)))
        if not self.trial.should_prune():
            return None
        name = self.spec.pruner.name
        return (
            f"pruned by the {name} pruner at step {step}: {self.metric} = {value:.4g} "
            f"(reported {', '.join(f'{v:.4g}' for _, v in self.reported)})"
        )
