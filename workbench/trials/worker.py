"""The trial worker: a subprocess that takes a plan, builds, opens, benchmarks, and writes a result.

`python -m workbench.trials.worker PLAN.json RESULT.json`. This is the only place torch and the engines'
libraries are imported. Any failure is written into the result with its cause; if the process dies
(killed, out of memory), the parent records that instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from workbench.knobs import split_knobs
from workbench.trials.plan import TrialPlan
from workbench.trials.result import Failure, TrialResult


def _classify(e: BaseException) -> str:
    from workbench.engines.base import EngineError

    if isinstance(e, EngineError):
        return e.kind
    if isinstance(e, MemoryError) or type(e).__name__ in ("OutOfMemoryError", "OutOfMemoryError_"):
        return "oom"
    if "out of memory" in str(e).lower():
        return "oom"
    if isinstance(e, TimeoutError):
        return "timeout"
    return "crash"


def run(plan: TrialPlan, deadline: float | None = None, model_pool: Any = None) -> TrialResult:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    from workbench.engines import get_engine_class
    from workbench.trials.cache import EngineCache, artifact_material, build_key
    from workbench.trials.memory import MemorySampler

    engine_cls = get_engine_class(plan.engine)
    build_knobs, runtime_knobs = split_knobs(engine_cls.knobs, plan.knobs)
    result = TrialResult(
        study=plan.study,
        trial_id=plan.trial_id,
        status="FAILED",
        engine=plan.engine,
        model=plan.model_source,
        knobs=plan.knobs,
        build_knobs=build_knobs,
        runtime_knobs=runtime_knobs,
    )
    import torch

    if plan.threads:
        torch.set_num_threads(plan.threads)
    timings["imports"] = time.perf_counter() - t_start
    sampler = MemorySampler(plan.device_kind, plan.device_index or 0)
    runner = None
    try:
        with sampler:
            engine = engine_cls()
            ctx = plan.open_context(model_pool)
            sampler.mark("build")
            t = time.perf_counter()
            material = artifact_material(plan, engine_cls, build_knobs)
            if engine_cls.needs_build(build_knobs):
                key = build_key(material)
                artifact = EngineCache(plan.cache_dir).get_or_build(
                    plan.engine, key, material, lambda out: engine.build(ctx, build_knobs, out)
                )
                if not artifact.cache_hit:
                    artifact.manifest.setdefault("build_knobs", build_knobs)
            else:
                from workbench.engines.base import Artifact

                key = None
                artifact = Artifact(
                    Path(plan.model_source), None, {"build_knobs": build_knobs, "source": True}
                )
            timings["build"] = time.perf_counter() - t
            result.build = {
                "build_key": key,
                "cache_hit": artifact.cache_hit,
                "artifact_path": str(artifact.path),
                "build_s": 0.0
                if artifact.cache_hit or key is None
                else artifact.manifest.get("build_s", 0.0),
                "steps_s": artifact.manifest.get("steps_s", {}),
                "size_bytes": artifact.manifest.get("size_bytes"),
            }
            sampler.mark("load")
            t = time.perf_counter()
            runner = engine.open(ctx, artifact, runtime_knobs)
            timings["open"] = time.perf_counter() - t
            result.engine_config = dict(runner.resolved_config)
            sampler.mark("benchmark")
            t = time.perf_counter()
            tok = runner.tokenizer
            special = set(getattr(tok, "all_special_ids", None) or [])
            from workbench.trials.bench import run_benchmark

            report = run_benchmark(
                runner,
                plan,
                vocab_size=runner.vocab_size,
                tokenizer=tok,
                special_ids=special,
                deadline=deadline,
            )
            timings["benchmark"] = time.perf_counter() - t
            if plan.accuracy is not None:
                sampler.mark("accuracy")
                t = time.perf_counter()
                result.accuracy, acc_metrics = _accuracy(plan, runner, result)
                timings["accuracy"] = time.perf_counter() - t
            runner.refresh_stats()
            stats = runner.stats()
            sampler.mark("close")
            runner.close()
            result.engine_config = dict(runner.resolved_config)
            runner = None
        mem = sampler.report()
        report["memory"] = {
            **mem,
            "weights_bytes": stats.weights_bytes,
            "kv_cache_bytes": (stats.kv_cache_tokens or 0) * (stats.kv_bytes_per_token or 0),
        }
        report["engine"] = {
            "name": plan.engine,
            "model": plan.model_source,
            "backend": plan.engine,
            "dtype": stats.dtype,
            "quantization": build_knobs.get("quantization"),
            **{"config": result.engine_config},
        }
        result.bench = report
        m = dict(report["mean_metrics"])
        m["output_tok_s_cv"] = report["repeats"]["metrics"]["output_tok_s"]["cv"]
        peak = mem["peak_above_baseline_bytes"]
        if stats.model_reused:  # loaded by an earlier point of a grid: count it too
            peak += stats.weights_bytes or 0
        m["peak_memory_gb"] = peak / 1024**3
        m["kv_cache_tokens"] = float(stats.kv_cache_tokens or 0)
        m["build_s"] = float(result.build["build_s"])
        m["weights_gb"] = (report["memory"]["weights_bytes"] or 0) / 1024**3
        m["kv_cache_gb"] = report["memory"]["kv_cache_bytes"] / 1024**3
        if plan.accuracy is not None:
            m.update(acc_metrics)
        roof = _roofline(plan, stats, report)
        if roof is not None:
            report["roofline"] = roof
            m.update(roof["metrics"])
        result.metrics = m
        result.status = "COMPLETE"
    except BaseException as e:  # noqa: BLE001 - every failure must reach the result file
        result.status = "FAILED"
        kind = "interrupted" if isinstance(e, KeyboardInterrupt) else _classify(e)
        result.failure = Failure(
            kind=kind, message=f"{type(e).__name__}: {e}"[:2000], detail=traceback.format_exc()[-8000:]
        )
        with contextlib.suppress(Exception):
            result.bench = {"memory": sampler.report()}
        if runner is not None:
            with contextlib.suppress(Exception):
                runner.close()
    result.timings_s = {**timings, "worker_total": time.perf_counter() - t_start}
    result.environment = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return result


def _roofline(plan: TrialPlan, stats: Any, report: dict[str, Any]) -> dict[str, Any] | None:
    """The decode roofline of this trial, with the bandwidth measured on this device right after it."""
    from workbench.trials.roofline import bandwidth_for, measure_bandwidth, trial_roofline

    measured = None
    with contextlib.suppress(Exception):  # a failed measurement falls back to the data sheet
        measured = measure_bandwidth(plan.device_kind, repeats=10 if plan.device_kind == "cuda" else 5,
                                     size_mib=2048 if plan.device_kind == "cuda" else 128)  # fmt: skip
    bw = bandwidth_for(plan.device_kind, plan.device_name, measured)
    return trial_roofline(
        knobs=plan.knobs,
        report=report,
        weight_bytes=stats.weights_bytes,
        kv_bytes_per_token=stats.kv_bytes_per_token,
        kv_cache_tokens=stats.kv_cache_tokens,
        bandwidth=bw,
    )


def _accuracy(plan: TrialPlan, runner: Any, result: TrialResult) -> tuple[dict[str, Any], dict[str, float]]:
    """GSM8K on this trial's own engine, or the measurement of an earlier trial with the same build key."""
    acc = plan.accuracy
    assert acc is not None
    reuse = plan.accuracy_reuse
    g = plan.accuracy_gate
    if reuse is not None and acc.reuse == "build_key":
        metrics = dict(reuse["metrics"])
        info: dict[str, Any] = {
            "reused_from_trial": reuse["trial"],
            "accuracy_key": reuse.get("accuracy_key"),
        }
        if g is not None:
            from workbench.accuracy import gate_threshold

            n = int(metrics["gsm8k_n"])
            thr = gate_threshold(
                g["baseline"], n, g.get("alpha", 0.05), g.get("sigma", 50.0), g.get("max_drop", 0.0)
            )
            metrics["gsm8k_gate_threshold"] = thr
            metrics["gsm8k_gate_passed"] = float(metrics["gsm8k_score"] >= thr)
            info["gate"] = {
                **g,
                "threshold": thr,
                "n_used": n,
                "decision": "pass" if metrics["gsm8k_gate_passed"] else "fail",
            }
        return info, metrics
    from workbench.accuracy import WorkbenchLM, evaluate, write_samples

    lm = WorkbenchLM(runner, max_gen_toks=acc.max_gen_toks, max_input_len=acc.max_input_len)
    res = evaluate(
        lm,
        task=acc.task,
        data_path=plan.accuracy_data_path,
        limit=acc.limit,
        num_fewshot=acc.num_fewshot,
        fewshot_seed=acc.fewshot_seed,
        apply_chat_template=acc.apply_chat_template,
        fewshot_as_multiturn=acc.fewshot_as_multiturn,
        gate=g,
        chunk=g.get("chunk", 100) if g else 100,
    )
    path = write_samples(res, Path(plan.out_dir) / "gsm8k_samples.jsonl")
    result.files["gsm8k_samples"] = str(path)
    metrics = res.metrics()
    if reuse is not None and acc.reuse == "check":
        metrics["gsm8k_score_reuse_delta"] = res.score - reuse["metrics"]["gsm8k_score"]
    info = {
        "protocol": res.lm_eval_config,
        "n": res.n,
        "n_planned": res.n_total,
        "gate": res.gate,
        "score": res.score,
        "seconds": res.seconds,
    }
    return info, metrics


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m workbench.trials.worker PLAN.json RESULT.json", file=sys.stderr)
        return 2
    plan = TrialPlan.model_validate(json.loads(Path(argv[0]).read_text()))
    deadline_env = os.environ.get("WORKBENCH_DEADLINE_S")
    deadline = time.perf_counter() + float(deadline_env) if deadline_env else None
    result = run(plan, deadline)
    result.write(argv[1])
    print(
        f"worker: {result.status}"
        + (f" ({result.failure.kind}: {result.failure.message})" if result.failure else "")
    )
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the result is on disk: skip the interpreter's teardown of torch and friends (about a second)
    os._exit(code)
