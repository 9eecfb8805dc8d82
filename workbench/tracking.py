"""MLflow tracking: one experiment per study, a parent run per study, a nested run per trial.

All MLflow calls live here. They go through an explicit `MlflowClient` and explicit run ids (no
fluent global "active run"), which is what stays correct when several workers log at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.spec import StudySpec

if TYPE_CHECKING:
    import optuna

    from workbench.trials.result import TrialResult

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
ROLE = "workbench.role"
RATIO_METRICS = (
    "output_tok_s",
    "total_tok_s",
    "request_per_s",
    "ttft_ms_p95",
    "tpot_ms_p50",
    "peak_memory_gb",
)


def _redact(url: str) -> str:
    from workbench.study import redact

    return redact(url)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class Tracker:
    def __init__(self, tracking_uri: str | None, spec: StudySpec, storage_url: str = ""):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow import MlflowClient

        self.uri = tracking_uri or DEFAULT_TRACKING_URI
        artifact_location = None
        if self.uri.startswith("sqlite:///"):  # relative (three slashes) or absolute (four)
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            artifact_location = (db.parent / "artifacts" / spec.name).resolve().as_uri()
        with _init_lock(self.uri):  # opening the store creates (migrates) the database: one process at a time
            self.client = MlflowClient(tracking_uri=self.uri)
        self.spec = spec
        exp = self.client.get_experiment_by_name(spec.name)
        if exp is None:
            try:
                self.experiment_id = self.client.create_experiment(
                    spec.name,
                    artifact_location=artifact_location,
                    tags={"engine": spec.engine, "model": spec.model_source, "workbench.study": spec.name},
                )
            except Exception:  # another process created it first
                self.experiment_id = self.client.get_experiment_by_name(spec.name).experiment_id
        else:
            self.experiment_id = exp.experiment_id
        with _init_lock(self.uri):  # two processes starting together must find one parent run
            self.parent_id = self._parent_run(storage_url)

    # ------------------------------------------------------------------------------------- study run
    def _parent_run(self, storage_url: str) -> str:
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
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.spec.name} (study)",
            tags={
                ROLE: "study",
                "study": self.spec.name,
                "engine": self.spec.engine,
                "model": self.spec.model_source,
                "optuna_storage": _redact(storage_url),
                "sampler": self.spec.sampler.name,
            },
        )
        rid = run.info.run_id
        from mlflow.entities import Param

        from workbench.study import constraint_names

        params = {
            "engine": self.spec.engine,
            "model": self.spec.model_source,
            "sampler": self.spec.sampler.name,
            "objectives": ",".join(f"{o.direction}:{o.metric}" for o in self.spec.objectives),
            "constraints": ";".join(constraint_names(self.spec)) or "none",
            "workload.num_requests": self.spec.workload.num_requests,
        }
        self.client.log_batch(rid, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        spec_json = self.spec.model_dump(mode="json", exclude={"source_path"})
        self.client.log_dict(rid, spec_json, "study/spec.json")
        if self.spec.source_path and Path(self.spec.source_path).exists():
            self.client.log_artifact(rid, str(self.spec.source_path), "study")
        return rid

    # ------------------------------------------------------------------------------------ trial runs
    def tag(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def run_url(self, run_id: str) -> str:
        """The run's page in the MLflow UI (the tracking server itself, or `workbench ui`'s address)."""
        base = self.uri if self.uri.startswith(("http://", "https://")) else ui_base_url()
        return f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def start_trial(
        self, number: int, knobs: dict[str, Any], is_baseline: bool, dashboard_url: str | None = None
    ) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{number:04d}" + (" (baseline)" if is_baseline else ""),
            tags={
                "mlflow.parentRunId": self.parent_id,
                ROLE: "trial",
                "study": self.spec.name,
                "optuna_trial": str(number),
                "engine": self.spec.engine,
                "model": self.spec.model_source,
                "baseline": str(is_baseline).lower(),
                "status": "RUNNING",
                **(
                    {
                        "optuna_dashboard_url": dashboard_url,
                        "mlflow.note.content": f"Optuna trial {number} in optuna-dashboard: "
                        f"[{dashboard_url}]({dashboard_url})",
                    }
                    if dashboard_url
                    else {}
                ),
            },
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
        from mlflow.entities import Metric, Param, RunTag

        now = _now_ms()
        env = res.environment
        pk = env.get("packages", {})
        tags = {
            "status": res.status,
            "device": env.get("device", {}).get("name", ""),
            "gpu": env.get("device", {}).get("name", "")
            if env.get("device", {}).get("kind") == "cuda"
            else "none",
            "git_commit": str(env.get("git", {}).get("commit")),
            "git_dirty": str(env.get("git", {}).get("dirty")),
            **{f"pkg.{k}": v for k, v in pk.items()},
        }
        if res.build.get("build_key"):
            tags["build_key"] = res.build["build_key"]
            tags["build_cache_hit"] = str(res.build.get("cache_hit")).lower()
        if env.get("gpu"):
            tags["gpu_driver"] = str(env["gpu"].get("driver"))
        if res.failure:
            tags["failure_kind"] = res.failure.kind
            tags["failure"] = res.failure.message[:4000]
        params = [Param(f"engine.{k}", str(v)[:6000]) for k, v in res.engine_config.items()]
        metrics = [Metric(k, float(v), now, 0) for k, v in res.metrics.items() if _finite(v)]
        if baseline and res.status == "COMPLETE":
            for k in RATIO_METRICS:
                if _finite(res.metrics.get(k)) and _finite(baseline.get(k)) and baseline[k]:
                    metrics.append(Metric(f"{k}_vs_baseline", res.metrics[k] / baseline[k], now, 0))
        b = res.build or {}
        if b.get("size_bytes"):
            metrics.append(Metric("build.size_gb", b["size_bytes"] / 1024**3, now, 0))
        if b.get("build_key") and not b.get("cache_hit"):  # built by this trial: the time of each step
            for step, sec in (b.get("steps_s") or {}).items():
                if _finite(sec):
                    metrics.append(Metric(f"build.{_slug(step)}_s", float(sec), now, 0))
        for i, c in enumerate(constraints):
            metrics.append(Metric(f"constraint_{i}", float(c), now, 0))  # <= 0 is feasible
        if constraints:
            metrics.append(Metric("feasible", float(all(c <= 0 for c in constraints)), now, 0))
        self.client.log_batch(
            run_id, metrics=metrics, params=params, tags=[RunTag(k, str(v)) for k, v in tags.items()]
        )
        if res.accuracy:
            self.client.log_dict(run_id, res.accuracy, "trial/accuracy.json")
            if res.accuracy.get("reused_from_trial") is not None:
                self.client.set_tag(run_id, "gsm8k_reused_from_trial", str(res.accuracy["reused_from_trial"]))
            gate = res.accuracy.get("gate")
            if gate:
                self.client.set_tag(
                    run_id,
                    "gsm8k_gate",
                    f"{gate['decision']} (threshold {gate['threshold']:.2f}, n={gate.get('n_used')})",
                )
        for key in ("result", "plan", "log", "gsm8k_samples"):
            p = res.files.get(key)
            if p and Path(p).exists():
                self.client.log_artifact(run_id, p, "trial")
        if res.bench and "performance" in res.bench:
            self.client.log_dict(
                run_id, {k: v for k, v in res.bench.items() if k != "requests"}, "trial/bench_report.json"
            )
        status = {"COMPLETE": "FINISHED", "INFEASIBLE": "KILLED"}.get(res.status, "FAILED")
        self.client.set_terminated(run_id, status=status)

    def end_trial(self, run_id: str, res: Any, failure: str) -> None:
        """The trial ended without a result (for example the tune process was interrupted)."""
        self.client.set_tag(run_id, "status", "FAILED")
        self.client.set_tag(run_id, "failure", failure[:4000])
        self.client.set_terminated(run_id, status="FAILED")

    def reconcile(self, study: optuna.Study) -> int:
        """Runs left RUNNING by a process that died: failed, like their Optuna trials."""
        from optuna.trial import TrialState

        fixed = 0
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            rid = t.user_attrs.get("mlflow_run_id")
            if not rid:
                continue
            try:
                run = self.client.get_run(rid)
            except Exception:
                continue
            if run.info.status == "RUNNING":
                self.client.set_tag(rid, "status", "FAILED")
                self.client.set_tag(rid, "failure_kind", "crash")
                self.client.set_tag(
                    rid, "failure", "the process running this trial died (failed by Optuna's heartbeat)"
                )
                self.client.set_terminated(rid, status="FAILED")
                fixed += 1
        return fixed

    def log_study(self, study: optuna.Study, spec: StudySpec, interrupted: bool = False) -> None:
        from mlflow.entities import Metric
        from optuna.trial import TrialState

        from workbench.study import best_trials, trial_rows

        now = _now_ms()
        counts = {
            s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
            for s in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
        }
        metrics = [Metric(f"n_{k}", float(v), now, 0) for k, v in counts.items()]
        best = best_trials(study)
        if len(best) == 1 and best[0].values:
            for o, v in zip(spec.objectives, best[0].values, strict=True):
                metrics.append(Metric(f"best_{o.metric}", float(v), now, 0))
            ratio = next(
                (r.get("vs_baseline") for r in trial_rows(study) if r["number"] == best[0].number), None
            )
            if _finite(ratio):
                metrics.append(Metric("best_output_tok_s_vs_baseline", float(ratio), now, 0))
        self.client.log_batch(self.parent_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            rows = trial_rows(study)
            Path(tmp, "trials.json").write_text(json.dumps(rows, indent=2, default=str))
            Path(tmp, "best_trials.json").write_text(
                json.dumps(
                    [
                        {
                            "number": t.number,
                            "values": t.values,
                            "knobs": t.user_attrs.get("knobs"),
                            "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
                        }
                        for t in best
                    ],
                    indent=2,
                    default=str,
                )
            )
            self.client.log_artifact(self.parent_id, str(Path(tmp, "trials.json")), "study")
        try:  # the study's figures, the same functions the notebooks and the report use
            from workbench.plots import study_figures

            log_figures(self.client, self.parent_id, study_figures(study))
        except Exception as e:  # noqa: BLE001 - a figure must never fail a study
            self.client.set_tag(self.parent_id, "figures_error", f"{type(e).__name__}: {e}"[:4000])
            self.client.log_artifact(self.parent_id, str(Path(tmp, "best_trials.json")), "study")
        self.client.set_tag(self.parent_id, "interrupted", str(interrupted).lower())
        self.client.set_terminated(self.parent_id, status="KILLED" if interrupted else "FINISHED")


class NoTracker:
    """`--tracking-uri none`: a study run where no MLflow store is reachable (an air-gapped GPU node).

    Every result stays in its trial folder and the Optuna storage; `workbench import` later logs them
    into MLflow with the links both ways.
    """

    uri = "none"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

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

    def reconcile(self, study: optuna.Study) -> int:
        return 0

    def log_study(self, *args: Any, **kwargs: Any) -> None:
        pass


def link_url_attrs(tracker: Tracker | NoTracker, run_id: str) -> dict[str, str]:
    """The user attrs that point an Optuna trial at its MLflow run."""
    return {"mlflow_run_id": run_id, "mlflow_run_url": tracker.run_url(run_id)}


def make_tracker(tracking_uri: str | None, spec: StudySpec, storage_url: str = "") -> Tracker | NoTracker:
    if tracking_uri is not None and tracking_uri.lower() in ("none", "off"):
        return NoTracker()
    return Tracker(tracking_uri, spec, storage_url)


@contextlib.contextmanager
def _init_lock(uri: str) -> Any:
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


def ui_base_url() -> str:
    return os.environ.get("WORKBENCH_MLFLOW_UI_URL", "http://127.0.0.1:5000")


def png_enabled() -> bool:
    """PNG copies need kaleido's Chromium: on when one is found, unless WORKBENCH_FIGURE_PNG=0."""
    import shutil

    flag = os.environ.get("WORKBENCH_FIGURE_PNG", "auto")
    if flag == "0":
        return False
    return flag == "1" or any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def log_figures(
    client: Any, run_id: str, figures: dict[str, Any], artifact_path: str = "figures"
) -> list[str]:
    """Each plotly figure as interactive HTML, and as PNG where kaleido finds a Chromium to render with."""
    logged = []
    for name, fig in figures.items():
        client.log_figure(run_id, fig, f"{artifact_path}/{name}.html")
        logged.append(f"{name}.html")
    if png_enabled():
        try:  # one browser session renders them all (about 3 s for seven figures)
            import plotly.io as pio

            with tempfile.TemporaryDirectory() as tmp:
                paths = [str(Path(tmp) / f"{n}.png") for n in figures]
                pio.write_images(list(figures.values()), paths)
                client.log_artifacts(run_id, tmp, artifact_path)
            logged += [f"{n}.png" for n in figures]
        except Exception as e:  # noqa: BLE001 - HTML is enough; say why there is no PNG
            client.set_tag(run_id, "figures_png_error", f"{type(e).__name__}: {e}"[:1000])
    return logged


def study_run_id(client: Any, study_name: str) -> str | None:
    exp = client.get_experiment_by_name(study_name)
    if exp is None:
        return None
    found = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`{ROLE}` = 'study'", max_results=1,
        order_by=["attributes.start_time ASC"],
    )  # fmt: skip
    return found[0].info.run_id if found else None


def attach_to_study_run(tracking_uri: str, study_name: str, path: Path, artifact_path: str) -> str | None:
    """Log a file (the HTML report) to the study's parent run; None when the study has no MLflow run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    rid = study_run_id(client, study_name)
    if rid is not None:
        client.log_artifact(rid, str(path), artifact_path)
    return rid


def log_crosscheck(
    tracking_uri: str | None, run_id: str, work: Path, theirs: dict[str, float], comparison: dict[str, Any]
) -> None:
    """trtllm-bench's numbers beside the trial's own, in the trial's run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri or DEFAULT_TRACKING_URI)
    for k, v in theirs.items():
        client.log_metric(run_id, f"trtllm_bench.{k}", v)
    for k, row in comparison["metrics"].items():
        if row["ratio"] is not None:
            client.log_metric(run_id, f"trtllm_bench_ratio.{k}", row["ratio"])
    client.set_tag(run_id, "crosscheck.engine_source", comparison["engine_source"])
    for f in sorted(work.iterdir()):
        if f.is_file() and f.suffix in (".json", ".log", ".sh", ".yaml"):
            client.log_artifact(run_id, str(f), artifact_path="crosscheck")


def _slug(name: str) -> str:
    """A build-step label ("Loading HF model to memory") as a metric-name part."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
