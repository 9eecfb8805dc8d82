"""MLflow outside a running study: the study's parent run found by name, files and cross-checks logged
to it, and the user attrs that link an Optuna trial to its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench import settings
from workbench.tracking.base import ROLE, Tracker


def link_url_attrs(tracker: Tracker, run_id: str) -> dict[str, str]:
    """The user attrs that point an Optuna trial at its MLflow run."""
    return {"mlflow_run_id": run_id, "mlflow_run_url": tracker.run_url(run_id)}


def ui_base_url() -> str:
    return settings.mlflow_ui_url()


def study_run_id(client: Any, study_name: str) -> str | None:
    exp = client.get_experiment_by_name(study_name)
    if exp is None:
        return None
    found = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{ROLE}` = 'study'",
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    return found[0].info.run_id if found else None


def attach_to_study_run(tracking_uri: str, study_name: str, path: Path, artifact_path: str) -> str | None:
    """Log a file (the HTML report) to the study's parent run; None when the study has no MLflow run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    rid = study_run_id(client, study_name)
    if rid is not None:
        client.log_artifact(rid, str(path), artifact_path)
    return rid


def log_crosscheck(tracking_uri: str | None, run_id: str, work: Path, comparison: Any) -> None:
    """The vendor tool's numbers beside the trial's own, in the trial's run (`comparison`: an
    `engines.base.Crosscheck`): `<tool>.<metric>` and `<tool>_ratio.<metric>` (tool's / ours), `-` in
    the tool's name written `_` (trtllm_bench, aiperf)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri(tracking_uri))
    prefix = comparison.tool.replace("-", "_")
    for k, m in comparison.metrics.items():
        client.log_metric(run_id, f"{prefix}.{k}", m.theirs)
        if m.ratio is not None:
            client.log_metric(run_id, f"{prefix}_ratio.{k}", m.ratio)
    client.set_tag(run_id, "crosscheck.tool", comparison.tool)
    client.set_tag(run_id, "crosscheck.engine_source", comparison.engine_source)
    for f in sorted(work.iterdir()):
        if f.is_file() and f.suffix in (".json", ".log", ".sh", ".yaml"):
            client.log_artifact(run_id, str(f), artifact_path="crosscheck")
