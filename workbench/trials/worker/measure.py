"""The measurement of one trial, in the worker's environment: build or fetch, open, benchmark, accuracy,
roofline, assemble.

Runs in the worker process (or, for grid recording, in the orchestrator with a model pool). It imports
only the standard library, pydantic, PyYAML, the workbench's worker-side modules and the engine's own
packages; memory is sampled from outside, so here only phase marks are written. Any failure is
recorded in the result with its cause.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from workbench.engines.base import Artifact, Engine, EngineError
from workbench.engines.runner import Runner, RunnerStats
from workbench.trials.plan import TrialPlan
from workbench.trials.result import Failure, TrialResult
from workbench.trials.worker.phase_marks import PhaseMarks

GB = 1024**3


def classify(e: BaseException) -> str:
    """The failure kind of an exception raised inside a trial."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, EngineError):
        return e.kind
    if isinstance(e, MemoryError) or type(e).__name__ in ("OutOfMemoryError", "OutOfMemoryError_"):
        return "oom"
    if "out of memory" in str(e).lower():
        return "oom"
    if isinstance(e, TimeoutError):
        return "timeout"
    return "crash"


def measure(
    plan: TrialPlan, deadline: float | None = None, marks: PhaseMarks | None = None, model_pool: Any = None
) -> TrialResult:
    """Run the trial the plan describes; return its result (memory fields are added by the executor)."""
    t_start = time.perf_counter()
    from workbench.engines import worker_engine_class

    marks = marks or PhaseMarks(None)
    engine_cls = worker_engine_class(plan.engine)
    result = TrialResult.unrun(plan, "FAILED", None)
    torch = _torch(plan.threads)
    timings = {"imports": time.perf_counter() - t_start}
    runner = None
    try:
        engine = engine_cls(plan.open_context(model_pool))
        engine.require_available()
        marks.mark("build")
        artifact = timed(timings, "build", build_or_fetch, plan, engine, result)
        marks.mark("load")
        runner = timed(timings, "open", engine.open, artifact, plan.runtime_knobs)
        result.engine_config = dict(runner.resolved_config)
        marks.mark("benchmark")
        report = timed(timings, "benchmark", benchmark, plan, runner, deadline)
        acc_metrics = {}
        if plan.accuracy is not None:
            marks.mark("accuracy")
            result.accuracy, acc_metrics = timed(timings, "accuracy", accuracy, plan, runner, result)
        runner.refresh_stats()
        stats = runner.stats()
        marks.mark("close")
        runner.close()
        result.engine_config = dict(runner.resolved_config)
        runner = None
        assemble(plan, result, report, stats, acc_metrics)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the result file
        result.status = "FAILED"
        result.failure = Failure(
            kind=classify(e), message=f"{type(e).__name__}: {e}"[:2000], detail=traceback.format_exc()[-8000:]
        )
        if getattr(e, "partial_sweep", None):  # a sweep cut by the deadline: what it measured is kept
            result.bench = {**(result.bench or {}), "sweep": e.partial_sweep}  # type: ignore[attr-defined]
        if runner is not None:
            with contextlib.suppress(Exception):
                runner.close()
    result.timings_s = {**timings, "worker_total": time.perf_counter() - t_start}
    result.environment = worker_environment(torch)
    return result


def timed(timings: dict[str, float], name: str, fn: Any, *args: Any) -> Any:
    t = time.perf_counter()
    out = fn(*args)
    timings[name] = time.perf_counter() - t
    return out


def _torch(threads: int | None) -> Any:
    """torch, when the engine's environment has it (every built-in engine does), with the thread count set."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    return torch


def build_or_fetch(plan: TrialPlan, engine: Engine, result: TrialResult) -> Artifact:
    """The artifact of the plan's build key: from the cache, built once under a lock, or the source model."""
    from workbench.trials.cache import EngineCache

    key = plan.build_key
    if key is not None:
        artifact = EngineCache(plan.cache_dir).get_or_build(
            plan.engine, key, plan.key_material or {}, lambda out: engine.build(plan.build_knobs, out)
        )
        if not artifact.cache_hit:
            artifact.manifest.setdefault("build_knobs", plan.build_knobs)
    else:
        artifact = Artifact(Path(plan.model_source), None, {"build_knobs": plan.build_knobs, "source": True})
    result.build = {
        "build_key": key,
        "cache_hit": artifact.cache_hit,
        "artifact_path": str(artifact.path),
        "build_s": 0.0 if artifact.cache_hit or key is None else artifact.manifest.get("build_s", 0.0),
        "steps_s": artifact.manifest.get("steps_s", {}),
        "size_bytes": artifact.manifest.get("size_bytes"),
    }
    if not artifact.cache_hit and artifact.manifest.get("build_process"):
        # the engine built in a child process: its peak is the build's, not the trial's serving peak
        result.build["build_process"] = artifact.manifest["build_process"]
        result.build["build_peak"] = artifact.manifest.get("build_peak")
    return artifact


def benchmark(plan: TrialPlan, runner: Runner, deadline: float | None) -> dict[str, Any]:
    from workbench.trials.worker.bench import run_benchmark

    tok = runner.tokenizer
    special = set(getattr(tok, "all_special_ids", None) or [])
    return run_benchmark(
        runner, plan, vocab_size=runner.vocab_size, tokenizer=tok, special_ids=special, deadline=deadline
    )


def accuracy(plan: TrialPlan, runner: Runner, result: TrialResult) -> tuple[dict[str, Any], dict[str, float]]:
    """GSM8K on this trial's own engine, or the measurement of an earlier trial with the same weights."""
    from workbench.trials.worker.accuracy_step import measure_accuracy, reuse_accuracy

    acc = plan.accuracy
    assert acc is not None
    if plan.accuracy_reuse is not None and acc.reuse == "build_key":
        return reuse_accuracy(plan)
    return measure_accuracy(plan, runner, result)


def assemble(
    plan: TrialPlan, result: TrialResult, report: dict[str, Any], stats: RunnerStats, acc: dict[str, float]
) -> None:
    """The report and the flat metrics of a finished trial (peak memory is added from outside)."""
    report["memory"] = {
        "weights_bytes": stats.weights_bytes,
        "kv_cache_bytes": (stats.kv_cache_tokens or 0) * (stats.kv_bytes_per_token or 0),
        # loaded by an earlier point of a grid: the executor counts it in this point's peak too
        "reused_weights_bytes": (stats.weights_bytes or 0) if stats.model_reused else 0,
    }
    report["engine"] = {
        "name": plan.engine,
        "model": plan.model_source,
        "backend": plan.engine,
        "dtype": stats.dtype,
        "quantization": plan.build_knobs.get("quantization"),
        "config": result.engine_config,
    }
    result.bench = report
    m = dict(report["mean_metrics"])
    m["output_tok_s_cv"] = report["repeats"]["metrics"]["output_tok_s"]["cv"]
    m["kv_cache_tokens"] = float(stats.kv_cache_tokens or 0)
    m["build_s"] = float(result.build["build_s"])
    m["weights_gb"] = (stats.weights_bytes or 0) / GB
    m["kv_cache_gb"] = report["memory"]["kv_cache_bytes"] / GB
    m.update(acc)
    roof = roofline(plan, stats, report)
    if roof is not None:
        report["roofline"] = roof
        m.update(roof["metrics"])
    result.metrics = m
    result.status = "COMPLETE"


def roofline(plan: TrialPlan, stats: RunnerStats, report: dict[str, Any]) -> dict[str, Any] | None:
    """The decode roofline of this trial, with the bandwidth measured on this device right after it."""
    from workbench.trials.worker.roofline import bandwidth_for, measure_bandwidth, trial_roofline

    measured = None
    cuda = plan.device_kind == "cuda"
    with contextlib.suppress(Exception):  # a failed measurement falls back to the data sheet
        measured = measure_bandwidth(
            plan.device_kind, repeats=10 if cuda else 5, size_mib=2048 if cuda else 128
        )
    return trial_roofline(
        knobs=plan.knobs,
        report=report,
        weight_bytes=stats.weights_bytes,
        kv_bytes_per_token=stats.kv_bytes_per_token,
        kv_cache_tokens=stats.kv_cache_tokens,
        bandwidth=bandwidth_for(plan.device_kind, plan.device_name, measured),
    )


def apply_memory(result: TrialResult, mem: dict[str, Any]) -> None:
    """Merge the memory sampled from outside into a result: the report block and `peak_memory_gb`."""
    bench = dict(result.bench or {})
    own = dict(bench.get("memory") or {})
    reused = own.pop("reused_weights_bytes", 0) or 0
    bench["memory"] = {**mem, **own}
    result.bench = bench
    if result.status == "COMPLETE":
        peak = mem["peak_above_baseline_bytes"]
        phases = mem.get("phase_peak_above_baseline_bytes") or {}
        serving = [v for k, v in phases.items() if k not in ("start", "build")]
        extra = {}
        if (result.build or {}).get("build_process") == "separate" and serving:
            peak = max(serving)  # build and serving peaks apart: the build ran in its own process
            extra["build_peak_memory_gb"] = phases.get("build", 0) / GB
        result.metrics = {**result.metrics, "peak_memory_gb": (peak + reused) / GB, **extra}


def worker_environment(torch: Any) -> dict[str, Any]:
    """Where the worker ran: its interpreter, torch, and the top-level packages it imported."""
    cuda = bool(torch is not None and torch.cuda.is_available())
    return {
        "python_executable": sys.executable,
        "python": ".".join(map(str, sys.version_info[:3])),
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cuda_available": cuda,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "imported": sorted({m.split(".")[0] for m in list(sys.modules) if not m.startswith("_")}),
    }
