"""MLflow tracking: one experiment per study, a parent run per study, a nested run per trial.

All MLflow calls of a study live here. They go through an explicit `MlflowClient` and explicit run
ids (no fluent global "active run"), which is what stays correct when several workers log at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import settings
from workbench.spec import StudySpec
from workbench.tracking.base import ROLE, FiguresFactory, StudySummary, TrialFigures, TrialView
from workbench.tracking.figures import log_figures
from workbench.tracking.reconcile import reconcile_runs
from workbench.tracking.results import result_batch
from workbench.tracking.sqlite_store import ensure_sqlite_store
from workbench.tracking.view import run_name, set_up_experiment

if TYPE_CHECKING:
    from workbench.trials.result import TrialResult


class MlflowTracker:
    """The `Tracker` of an MLflow store: `storage_url` (redacted) and `constraints` (names) are tagged;
    `trial_figures(result)` makes the figures logged with each trial's run (none when None)."""

    def __init__(
        self,
        tracking_uri: str | None,
        spec: StudySpec,
        storage_url: str = "",
        constraints: list[str] | None = None,
        trial_figures: TrialFigures | None = None,
    ):
        self.trial_figures = trial_figures
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow import MlflowClient

        self.uri = settings.tracking_uri(tracking_uri)
        self.spec = spec
        with init_lock(self.uri):  # opening the store creates (migrates) the database: one process at a time
            ensure_sqlite_store(self.uri)  # made whole or not at all (a kill mid-creation broke it)
            self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment()
        with init_lock(self.uri):  # two processes starting together must find one parent run
            self.parent_id = self._parent_run(storage_url, constraints or [])
        metrics = [c.metric for c in spec.constraints]
        set_up_experiment(self.client, self.experiment_id, spec, self.parent_id, metrics)

    def _experiment(self) -> str:
        name = self.spec.name
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):  # relative (three slashes) or absolute (four)
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            location = (db.parent / "artifacts" / name).resolve().as_uri()
        tags = {"engine": self.spec.engine, "model": self.spec.model_source, "workbench.study": name}
        try:
            return self.client.create_experiment(name, artifact_location=location, tags=tags)
        except Exception:  # another process created it first
            return self.client.get_experiment_by_name(name).experiment_id

    # ------------------------------------------------------------------------------------- study run
    def _parent_run(self, storage_url: str, constraints: list[str]) -> str:
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'study'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        s = self.spec
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{s.name} (study)",
            tags={
                ROLE: "study",
                "study": s.name,
                "engine": s.engine,
                "model": s.model_source,
                "optuna_storage": storage_url,
                "sampler": s.sampler.name,
            },
        )
        rid = run.info.run_id
        from mlflow.entities import Param

        params = {
            "engine": s.engine,
            "model": s.model_source,
            "sampler": s.sampler.name,
            "objectives": ",".join(f"{o.direction}:{o.metric}" for o in s.objectives),
            "constraints": ";".join(constraints) or "none",
            "workload.num_requests": s.workload.num_requests,
        }
        self.client.log_batch(rid, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        self.client.log_dict(rid, s.model_dump(mode="json", exclude={"source_path"}), "study/spec.json")
        if s.source_path and Path(s.source_path).exists():
            self.client.log_artifact(rid, str(s.source_path), "study")
        return rid

    def log_study(
        self, summary: StudySummary, figures: FiguresFactory | None = None, interrupted: bool = False
    ) -> None:
        """Counts and best values as metrics; trials.json, best_trials.json and the figures as artifacts.

        The JSON files are logged before any figure is made, and a figure that fails only leaves a
        `figures_error` tag: the study's end never fails on a figure.
        """
        from mlflow.entities import Metric

        now = _now_ms()
        metrics = [Metric(f"n_{k}", float(v), now, 0) for k, v in summary.counts.items()]
        metrics += [Metric(f"best_{k}", float(v), now, 0) for k, v in summary.best_values.items()]
        if summary.best_vs_baseline is not None:
            metrics.append(Metric("best_output_tok_s_vs_baseline", float(summary.best_vs_baseline), now, 0))
        self.client.log_batch(self.parent_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in (("trials.json", summary.rows), ("best_trials.json", summary.best)):
                Path(tmp, name).write_text(json.dumps(data, indent=2, default=str))
            self.client.log_artifacts(self.parent_id, tmp, "study")
        if figures is not None:
            try:  # the study's figures, the same functions the notebooks and the report use
                log_figures(self.client, self.parent_id, figures())
            except Exception as e:  # noqa: BLE001 - a figure must never fail a study
                self.client.set_tag(self.parent_id, "figures_error", f"{type(e).__name__}: {e}"[:4000])
        self.close_study(interrupted)

    def close_study(self, interrupted: bool) -> None:
        """End the study's run: FINISHED, or KILLED when the study was interrupted."""
        self.client.set_tag(self.parent_id, "interrupted", str(interrupted).lower())
        self.client.set_terminated(self.parent_id, status="KILLED" if interrupted else "FINISHED")

    # ------------------------------------------------------------------------------------ trial runs
    def tag(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def run_url(self, run_id: str) -> str:
        """The run's page in the MLflow UI (the tracking server itself, or `workbench ui`'s address)."""
        base = self.uri if self.uri.startswith(("http://", "https://")) else settings.mlflow_ui_url()
        return f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def start_trial(
        self, number: int, knobs: dict[str, Any], is_baseline: bool, dashboard_url: str | None = None
    ) -> str:
        from mlflow.entities import Param

        s = self.spec
        tags = {
            "mlflow.parentRunId": self.parent_id,
            ROLE: "trial",
            "study": s.name,
            "optuna_trial": str(number),
            "engine": s.engine,
            "model": s.model_source,
            "baseline": str(is_baseline).lower(),
            "status": "RUNNING",
        }
        if dashboard_url:
            tags["optuna_dashboard_url"] = dashboard_url
            tags["mlflow.note.content"] = (
                f"Optuna trial {number} in optuna-dashboard: [{dashboard_url}]({dashboard_url})"
            )
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name(
                number, knobs, [k for k in s.search_space if k not in s.fixed_knobs()], is_baseline
            ),
            tags=tags,
        )
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in knobs.items()])
        return run.info.run_id

    def log_result(
        self,
        run_id: str,
        res: TrialResult,
        number: int,
        baseline: dict[str, float] | None,
        constraints: list[float],
    ) -> None:
        metrics, params, tags = result_batch(res, baseline, constraints, _now_ms())
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if res.accuracy:
            self._log_accuracy(run_id, res.accuracy)
        for key in ("result", "plan", "log", "gsm8k_samples"):
            p = res.files.get(key)
            if p and Path(p).exists():
                self.client.log_artifact(run_id, p, "trial")
        if res.bench and "performance" in res.bench:
            report = {k: v for k, v in res.bench.items() if k != "requests"}
            self.client.log_dict(run_id, report, "trial/bench_report.json")
        self._log_trial_figures(run_id, res)
        status = {"COMPLETE": "FINISHED", "INFEASIBLE": "KILLED", "PRUNED": "KILLED"}.get(
            res.status, "FAILED"
        )
        self.client.set_terminated(run_id, status=status)

    def _log_trial_figures(self, run_id: str, res: TrialResult) -> None:
        """The trial's figures (a serving trial's server timeline); a failing figure only leaves a tag."""
        if self.trial_figures is None or not res.bench:
            return
        try:
            figs = self.trial_figures(res)
            if figs:
                log_figures(self.client, run_id, figs, "trial/figures")
        except Exception as e:  # noqa: BLE001 - a figure must never fail a trial
            self.client.set_tag(run_id, "figures_error", f"{type(e).__name__}: {e}"[:4000])

    def _log_accuracy(self, run_id: str, accuracy: dict[str, Any]) -> None:
        self.client.log_dict(run_id, accuracy, "trial/accuracy.json")
        if accuracy.get("reused_from_trial") is not None:
            self.client.set_tag(run_id, "gsm8k_reused_from_trial", str(accuracy["reused_from_trial"]))
        gate = accuracy.get("gate")
        if gate:
            decision = f"{gate['decision']} (threshold {gate['threshold']:.2f}, n={gate.get('n_used')})"
            self.client.set_tag(run_id, "gsm8k_gate", decision)

    def end_trial(self, run_id: str, res: Any, failure: str) -> None:
        """The trial ended without a result (for example the tune process was interrupted)."""
        self.client.set_tag(run_id, "status", "FAILED")
        self.client.set_tag(run_id, "failure", failure[:4000])
        self.client.set_terminated(run_id, status="FAILED")

    def reconcile(self, trials: Iterable[TrialView]) -> dict[str, int]:
        """Make every trial run agree with its Optuna trial (`workbench.tracking.reconcile`)."""
        return reconcile_runs(self.client, self.experiment_id, trials)


@contextlib.contextmanager
def init_lock(uri: str) -> Iterator[None]:
    """For a SQLite store, a file lock beside the database; other stores handle their own concurrency."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(str(db) + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
