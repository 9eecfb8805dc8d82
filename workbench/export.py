"""What a user deploys from a trial: `trial.json`, a README, and the engine's own files.

This module is engine-neutral: it writes the trial's summary and README and asks the study's engine
for its deployable files (`Engine(ctx).export(knobs, out)`, the engine bound to the trial: for `trtllm` the LLM-API options YAMLs,
build script and commands; for `hf` the continuous-batching settings). The engine sees the trial
through an `OpenContext` made from the study and the device the trial was measured on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.engines import get_engine_class, worker_engine_class
from workbench.engines.base import OpenContext
from workbench.metric_registry import shown_in
from workbench.spec import StudySpec
from workbench.types import DeviceInfo


def export(
    spec: StudySpec,
    trial_number: int,
    knobs: dict[str, Any],
    metrics: dict[str, Any],
    out_dir: Path,
    baseline_metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
    environment: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the deployable configuration of one trial into `out_dir`; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = engine_files(spec, trial_number, knobs, out_dir, environment)
    summary = {
        "study": spec.name,
        "trial": trial_number,
        "engine": spec.engine,
        "model": spec.model_source,
        "knobs": knobs,
        "metrics": metrics,
        "baseline_metrics": baseline_metrics or {},
        "mlflow_run_id": run_id,
        "environment": environment or {},
    }
    p = out_dir / "trial.json"
    p.write_text(json.dumps(summary, indent=2, default=str))
    files.append(p)
    readme = out_dir / "README.md"
    readme.write_text(
        _readme(spec, trial_number, knobs, metrics, baseline_metrics, run_id, environment, files)
    )
    return [*files, readme]


def trial_device(spec: StudySpec, environment: dict[str, Any] | None) -> DeviceInfo:
    """The device the trial was measured on: its recorded environment, else the study's trial.device."""
    dev = (environment or {}).get("device")
    if isinstance(dev, dict) and dev.get("kind") in ("cpu", "cuda"):
        arch = str(dev.get("arch") or "")
        cc = (int(arch[3:-1]), int(arch[-1])) if arch.startswith("sm_") and arch[3:].isdigit() else None
        return DeviceInfo(dev["kind"], str(dev.get("name", "")), int(dev.get("total_memory_bytes") or 0), cc)
    if spec.trial.device == "cpu":
        return DeviceInfo("cpu", "cpu", 0)
    if spec.trial.device == "cuda":
        return DeviceInfo("cuda", "cuda", 0)
    from workbench.trials.orchestrator.environment import detect_device

    return detect_device("auto")


def engine_files(
    spec: StudySpec,
    trial_number: int,
    knobs: dict[str, Any],
    out_dir: Path,
    environment: dict[str, Any] | None = None,
) -> list[Path]:
    """The engine's deployable files, from the engine bound to this trial; none where no engine ran the
    trials (a replayed grid: its README names the recorded engine)."""
    if get_engine_class(spec.engine).executor != "worker":
        return []
    ctx = export_context(spec, trial_number, knobs, environment)
    return list(worker_engine_class(spec.engine)(ctx).export(knobs, out_dir))


def export_context(
    spec: StudySpec, trial_number: int, knobs: dict[str, Any], environment: dict[str, Any] | None = None
) -> OpenContext:
    """What the engine's export sees of the trial (the same fields its runner saw)."""
    return OpenContext.for_model(
        spec.model,
        spec.model_source,
        device=trial_device(spec, environment),
        options=spec.options(),
        study_dir=str(spec.source_path.parent) if spec.source_path else None,
        knobs=knobs,
        cpu_kv_budget_gb=spec.trial.cpu_kv_budget_gb,
        study=spec.name,
        trial_id=str(trial_number),
    )


def default_out(study_name: str, number: int) -> Path:
    """Where a trial's export goes without `out`: under `settings.exports_dir()`, whatever the working
    folder (a notebook's is notebooks/)."""
    from workbench import settings

    return settings.exports_dir() / f"{study_name}-trial{number}"


def export_trial(
    study: Any, number: int | None = None, out: Path | None = None, spec: StudySpec | None = None
) -> list[Path]:
    """Export trial `number` (default: the best) of an Optuna study; the definition is the one stored in it."""
    from workbench.study import TrialRecord, baseline_trial, pick_trial, stored_spec

    spec = spec or stored_spec(study)
    t = pick_trial(study, number)
    rec = TrialRecord.read(t)
    base = baseline_trial(study)
    env: dict[str, Any] = {}
    if rec.result_path and Path(rec.result_path).exists():
        env = json.loads(Path(rec.result_path).read_text()).get("environment", {})
    return export(
        spec,
        t.number,
        rec.knobs_or(t.params),
        rec.metrics,
        out or default_out(spec.name, t.number),
        baseline_metrics=TrialRecord.read(base).metrics if base else None,
        run_id=rec.mlflow_run_id,
        environment=env,
    )


def _readme(
    spec: StudySpec,
    number: int,
    knobs: dict[str, Any],
    metrics: dict[str, Any],
    base: dict[str, Any] | None,
    run_id: str | None,
    env: dict[str, Any] | None,
    files: list[Path],
) -> str:
    def ratio(k: str) -> str:
        if base and base.get(k) and metrics.get(k) is not None:
            return f" ({metrics[k] / base[k]:.2f}x the baseline's {base[k]:.4g})"
        return ""

    shown = [k for k in shown_in("export") if k in metrics]
    gpu = (env or {}).get("gpu") or (env or {}).get("device") or {}
    lines = [
        f"# {spec.name}, trial {number}: deployable configuration",
        "",
        f"Engine `{spec.engine}`, model `{spec.model_source}`"
        + (" (random weights: load_format dummy)" if spec.model.load_format == "dummy" else "")
        + ".",
        f"Measured on: {gpu.get('name', 'see trial.json') if isinstance(gpu, dict) else gpu}.",
        f"MLflow run: `{run_id}`." if run_id else "",
        "",
        "## Measured",
        "",
        *[f"- {k}: {metrics[k]:.4g}{ratio(k)}" for k in shown],
        "",
        "## Knobs",
        "",
        *[f"- {k}: `{v}`" for k, v in knobs.items()],
        "",
        "## Files",
        "",
        *[f"- `{f.name}`" for f in files],
        "",
    ]
    lines += get_engine_class(spec.engine).export_readme(files)
    return "\n".join(lines)
