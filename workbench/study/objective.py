"""The objective Optuna calls for each trial: knobs, duplicate check, accuracy plan, run, record.

One method per step. A trial that repeats knobs measured before takes that trial's results (no
second measurement); every other trial runs through `workbench.trials.orchestrator.run.run_trial` (a worker
process), is logged to the tracker, and is recorded on the Optuna trial as a `TrialRecord`.
Infeasible trials are pruned, and so are trials the study's pruner stops as they run (`pruning.py`);
failed ones raise `TrialFailed` (the study goes on).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from workbench.spec import StudySpec
from workbench.study.accuracy_plan import AccuracyPlan, accuracy_plan
from workbench.study.constraints import constraint_names, constraint_values, without_baseline
from workbench.study.errors import TrialFailed
from workbench.study.inspect import baseline_trial, trial_dashboard_url
from workbench.study.record import TrialRecord, finite_metrics
from workbench.study.recovery import PROVISIONAL, wait_for_baseline
from workbench.study.space import contains, distributions, suggest, suggest_one
from workbench.tracking import Tracker
from workbench.trials.result import TrialResult

log = logging.getLogger(__name__)


class Objective:
    """`study.optimize(Objective(...))`: one real trial per call."""

    def __init__(
        self,
        spec: StudySpec,
        study: optuna.Study,
        tracker: Tracker,
        device: Any,
        study_id: int,
        rerun_duplicates: bool = False,
    ):
        self.spec, self.study, self.tracker, self.device = spec, study, tracker, device
        self.study_id, self.rerun_duplicates = study_id, rerun_duplicates
        self.dists = distributions(spec)

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        if "failure_kind" not in trial.user_attrs:  # the cause a kill -9 leaves (recovery.PROVISIONAL)
            TrialRecord(**PROVISIONAL).write(trial)
        try:
            return self.measure(trial)
        except KeyboardInterrupt:
            TrialRecord(failure_kind="interrupted", failure="interrupted by the user (Ctrl-C)").write(trial)
            raise
        except (TrialFailed, optuna.TrialPruned):
            raise
        except Exception as e:
            TrialRecord(failure_kind="crash", failure=f"{type(e).__name__}: {e}"[:1000]).write(trial)
            raise

    def measure(self, trial: optuna.Trial) -> float | list[float]:
        is_base, knobs = self.baseline_or_suggest(trial)
        if not self.rerun_duplicates:
            dup = self.duplicate(trial, knobs)
            if dup is not None:
                return dup.values if len(dup.values) > 1 else dup.values[0]
        t0 = time.perf_counter()
        base = self.baseline(trial.number, is_base)
        plan = accuracy_plan(self.study, self.spec, knobs, self.device, base, is_base)
        run_id = self.start_run(trial, knobs, is_base, plan)
        t1 = time.perf_counter()
        res = self.run(trial, knobs, plan, run_id)
        t2 = time.perf_counter()
        constraints, note = self.log(run_id, res, trial.number, base, is_base)
        t3 = time.perf_counter()
        self.record(trial, res, constraints, note)
        # where the trial's time went outside the worker: traceable orchestration overhead
        steps = {"mlflow_start": t1 - t0, "run_trial": t2 - t1, "mlflow_log": t3 - t2}
        TrialRecord(orchestration_s={**steps, "optuna": time.perf_counter() - t3}).write(trial)
        return self.outcome(res)

    def baseline_or_suggest(self, trial: optuna.Trial) -> tuple[bool, dict[str, Any]]:
        """The enqueued baseline's knobs (its params: what the space can hold), or the sampler's suggestion."""
        from workbench.trials.knobs import resolve_knobs

        rec = TrialRecord.read(trial)
        is_base = rec.baseline
        if is_base and self._earlier_baseline(trial.number):
            is_base = False  # two processes starting together may both enqueue one: the first one wins
            TrialRecord(baseline=False).write(trial)
        if is_base:
            knobs = dict(rec.knobs or {})
            for name, d in self.dists.items():
                if name in trial.params or contains(d, knobs[name]):
                    suggest_one(trial, name, d)
            return True, knobs
        knobs = resolve_knobs(self.spec, suggest(trial, self.dists))
        TrialRecord(knobs=knobs).write(trial)
        return False, knobs

    def baseline(self, number: int, is_base: bool) -> FrozenTrial | None:
        """The completed baseline; while another worker still runs it, wait (a gate needs its reference)."""
        base = baseline_trial(self.study)
        if (
            base is None
            and not is_base
            and any(c.max_drop_from_baseline is not None for c in self.spec.constraints)
        ):
            wait_for_baseline(self.study, number, timeout_s=self.spec.trial.timeout_s)
            base = baseline_trial(self.study)
        return base

    def _earlier_baseline(self, number: int) -> bool:
        return any(
            TrialRecord.read(t).baseline and t.number < number and t.state != TrialState.FAIL
            for t in self.study.get_trials(deepcopy=False)
        )

    def duplicate(self, trial: optuna.Trial, knobs: dict[str, Any]) -> FrozenTrial | None:
        """An earlier complete trial with these knobs: its results are copied here, nothing is run."""
        dup = next(
            (
                t
                for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.number != trial.number
                and (r := TrialRecord.read(t)).knobs == knobs
                and not r.is_duplicate
            ),
            None,
        )
        if dup is None:
            return None
        # its results and links as far as it has them (a run id only where it was tracked)
        kept = TrialRecord.read(dup).model_dump(
            include={"metrics", "constraints", "mlflow_run_id", "result_path"}, exclude_unset=True
        )
        TrialRecord(duplicate_of=dup.number, failure_kind=None, failure=None, **kept).write(trial)
        for k, v in dup.constraints.items():
            trial.set_constraint(k, v)
        return dup

    def start_run(self, trial: optuna.Trial, knobs: dict[str, Any], is_base: bool, plan: AccuracyPlan) -> str:
        """The trial's tracker run, and who runs it, recorded on both sides."""
        from workbench.study.scaleout import worker_identity

        if plan.key:
            TrialRecord(accuracy_key=plan.key).write(trial)
        url = trial_dashboard_url(self.study_id, trial.number)
        run_id = self.tracker.start_trial(trial.number, knobs, is_base, dashboard_url=url)
        if run_id:
            TrialRecord(mlflow_run_id=run_id).write(trial)
            link_trial_to_run(trial, self.tracker.run_url(run_id))
        me = worker_identity()
        TrialRecord(worker=me).write(trial)
        self.tracker.tag(run_id, {f"worker.{k}": v for k, v in me.items() if v})
        return run_id

    def run(self, trial: optuna.Trial, knobs: dict[str, Any], plan: AccuracyPlan, run_id: str) -> TrialResult:
        from workbench.settings import workbench_home
        from workbench.trials.orchestrator.run import run_trial

        out_dir = (workbench_home() / "studies" / self.spec.name / f"trial-{trial.number:04d}").resolve()
        from workbench.study.pruning import Reporter

        try:
            return run_trial(
                self.spec,
                knobs,
                trial_id=f"{trial.number:04d}",
                out_dir=out_dir,
                device=self.device,
                accuracy_gate=plan.gate,
                accuracy_reuse=plan.reuse,
                reporter=None if self.spec.pruner.name == "none" else Reporter(trial, self.spec),
            )
        except BaseException as e:
            self.tracker.end_trial(run_id, None, failure=f"{type(e).__name__}: {e}")
            raise

    def log(
        self, run_id: str, res: TrialResult, number: int, base: FrozenTrial | None, is_base: bool
    ) -> tuple[list[float], str | None]:
        """The constraint values (against the baseline's metrics), logged to the tracker with the result;
        and a note when a constraint against the baseline had none to compare with."""
        if base is not None:
            baseline_metrics: dict[str, Any] | None = TrialRecord.read(base).metrics
        else:
            baseline_metrics = res.metrics if is_base else None
        ok = res.status == "COMPLETE"
        constraints = constraint_values(self.spec, res.metrics, baseline_metrics) if ok else []
        note = without_baseline(self.spec, res.metrics, baseline_metrics) if ok else None
        if note:
            log.warning("trial %d: %s", number, note)
            self.tracker.tag(run_id, {"constraint_note": note})
        self.tracker.log_result(run_id, res, number, baseline_metrics, constraints)
        return constraints, note

    def record(
        self, trial: optuna.Trial, res: TrialResult, constraints: list[float], note: str | None
    ) -> None:
        """What Optuna keeps of a trial: metrics, constraints, cause of failure, where the files are."""
        rec = TrialRecord(
            status=res.status, result_path=res.files.get("result", ""), failure_kind=None, failure=None
        )
        if note:
            rec.constraint_note = note
        if res.build.get("build_key"):
            rec.build_key = res.build["build_key"]
        if res.failure is not None:
            rec.failure_kind, rec.failure = res.failure.kind, res.failure.message[:1000]
        if res.status == "COMPLETE":
            rec.metrics, rec.constraints = finite_metrics(res.metrics), constraints
        elif res.status == "PRUNED":  # stopped early: what it measured before the pruner stopped it
            rec.metrics = finite_metrics(res.metrics)
        rec.write(trial)
        for name, value in zip(constraint_names(self.spec), constraints, strict=False):
            trial.set_constraint(name, value)

    def outcome(self, res: TrialResult) -> float | list[float]:
        """The objective values, or the exception that tells Optuna the trial was pruned or failed."""
        if res.status in ("INFEASIBLE", "PRUNED"):
            raise optuna.TrialPruned(res.failure.message if res.failure else "infeasible")
        if res.status != "COMPLETE":
            assert res.failure is not None
            if res.failure.kind == "interrupted":
                raise KeyboardInterrupt
            raise TrialFailed(f"{res.failure.kind}: {res.failure.message}")
        values = [res.metrics[o.metric] for o in self.spec.objectives]
        return values if len(values) > 1 else values[0]


def link_trial_to_run(trial: optuna.Trial, run_url: str) -> None:
    """The trial's record and its optuna-dashboard note both point at its MLflow run."""
    TrialRecord(mlflow_run_url=run_url).write(trial)
    try:
        from optuna_dashboard import save_note

        save_note(trial, f"MLflow run of this trial: [{run_url}]({run_url})")
    except Exception:  # noqa: BLE001 - the note is a convenience; the user attr carries the link
        pass
