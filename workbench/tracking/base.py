"""The tracking contract: what the study layer tells a sink about a study and its trials.

`Tracker` is the protocol; `MlflowTracker` logs to MLflow and `NullTracker` (`--tracking-uri none`)
drops everything. The study layer computes what the sink logs (`StudySummary`, figures made by the
caller), so the sink imports neither the study layer nor the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.trials.result import TrialResult

#: the tag that tells a study's parent run ("study") from its trial runs ("trial")
ROLE = "workbench.role"

#: the figures of a study by file-friendly name, made only when the sink asks (a failure is logged, not raised)
FiguresFactory = Callable[[], dict[str, Any]]

#: the figures of one trial's run from its result (e.g. `workbench.plots.trial_figures`), passed in from above
TrialFigures = Callable[["TrialResult"], dict[str, Any]]


@dataclass(frozen=True)
class TrialView:
    """One Optuna trial as the sink sees it when it reconciles its runs with the study."""

    number: int
    #: Optuna's state name: COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    state: str
    #: the trial's own run (None for a copy of an earlier trial, or a trial that never got a run)
    run_id: str | None = None
    failure_kind: str | None = None
    failure: str | None = None
    #: when the trial started and ended (seconds since the epoch)
    start: float | None = None
    end: float | None = None


@dataclass
class StudySummary:
    """What a study's parent run gets when a `tune` ends."""

    #: trials per state: {"complete": n, "fail": n, "pruned": n}
    counts: dict[str, int]
    #: objective metric -> value of the single best trial (empty for a Pareto set of several)
    best_values: dict[str, float] = field(default_factory=dict)
    #: the single best trial's output throughput over the baseline's
    best_vs_baseline: float | None = None
    #: one row per trial (`workbench.study.trial_rows`)
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: the best set: number, values, knobs, mlflow_run_id
    best: list[dict[str, Any]] = field(default_factory=list)


class Tracker(Protocol):
    """A sink for a study's runs: one parent run per study, one run per measured trial."""

    uri: str

    def tag(self, run_id: str, tags: dict[str, str]) -> None: ...

    def run_url(self, run_id: str) -> str: ...

    def start_trial(
        self, number: int, knobs: dict[str, Any], is_baseline: bool, dashboard_url: str | None = None
    ) -> str: ...

    def log_result(
        self,
        run_id: str,
        res: TrialResult,
        number: int,
        baseline: dict[str, float] | None,
        constraints: list[float],
    ) -> None: ...

    def end_trial(self, run_id: str, res: Any, failure: str) -> None: ...

    def reconcile(self, trials: Iterable[TrialView]) -> dict[str, int]: ...

    def close_study(self, interrupted: bool) -> None: ...

    def log_study(
        self, summary: StudySummary, figures: FiguresFactory | None = None, interrupted: bool = False
    ) -> None: ...


class NullTracker:
    """`--tracking-uri none`: a study run where no MLflow store is reachable (an air-gapped GPU node).

    Every result stays in its trial folder and the Optuna storage; `workbench import` later logs them
    into MLflow with the links both ways.
    """

    uri = "none"

    def tag(self, run_id: str, tags: dict[str, str]) -> None:
        pass

    def run_url(self, run_id: str) -> str:
        return ""

    def start_trial(self, *args: Any, **kwargs: Any) -> str:
        return ""

    def log_result(self, *args: Any, **kwargs: Any) -> None:
        pass

    def end_trial(self, *args: Any, **kwargs: Any) -> None:
        pass

    def reconcile(self, trials: Iterable[TrialView]) -> dict[str, int]:
        return {}

    def close_study(self, interrupted: bool) -> None:
        pass

    def log_study(self, *args: Any, **kwargs: Any) -> None:
        pass
