"""Run one trial: plan it (knobs resolved once, build key once), check feasibility, measure through an executor.

This is the orchestrator's side and stays light (no torch). The executor is the study's: a worker
process started by the study's launcher (`runtime:`), or a replay; a timeout, a memory limit breach
or a crash kills only the worker, and the cause is recorded in the result either way.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.accuracy.gate import AccuracyGate, AccuracyReuse
from workbench.engines import get_engine_class
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.metric_registry import DeriveInput, derive
from workbench.settings import workbench_home
from workbench.spec import StudySpec
from workbench.trials.orchestrator.environment import collect_environment, detect_device
from workbench.trials.orchestrator.executors import Executor, Reporter, executor_for
from workbench.trials.orchestrator.planning import add_keys, make_plan
from workbench.trials.result import TrialResult

__all__ = ["derived_metrics", "feasibility_context", "new_trial_id", "run_trial"]


def feasibility_context(spec: StudySpec, options: Any = None) -> FeasibilityContext:
    """What an engine may check before any work: the model's config.json, the longest requests, options
    (the validated engine options, `TrialPlan.options()`; None: parsed here from the study)."""
    from workbench.estimate import read_config
    from workbench.trials.workload import longest_lengths

    prompt, output = longest_lengths(spec.workload)
    acc = spec.accuracy
    return FeasibilityContext(
        model_config=read_config(spec.model_source),
        model_dtype=spec.model.dtype,
        load_format=spec.model.load_format,
        longest_prompt=prompt,
        longest_output=output,
        accuracy_input_len=acc.max_input_len if acc else None,
        accuracy_gen_len=acc.max_gen_toks if acc else None,
        options=spec.options() if options is None else options,
        study_dir=str(spec.source_path.parent) if spec.source_path else None,
    )


def new_trial_id() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def cache_dir(spec: StudySpec) -> Path:
    """The engine artifact cache: `trial.cache_dir`, else `<workbench home>/cache`."""
    return (
        Path(spec.trial.cache_dir).expanduser() if spec.trial.cache_dir else workbench_home() / "cache"
    ).resolve()


def derived_metrics(spec: StudySpec, res: TrialResult) -> dict[str, float]:
    """The registry's derived metrics of a result: cost from the study's `cost:` and the trial's GPUs
    (the engine's tensor_parallel_size), energy per token from the benchmark's NVML window."""
    gpus = int(spec.engine_options.get("tensor_parallel_size") or 1)
    price = spec.cost.usd_per_gpu_hour if spec.cost else None
    return derive(DeriveInput(res.metrics, res.bench or {}, price, gpus))


def run_trial(
    spec: StudySpec,
    values: dict[str, Any] | None = None,
    *,
    trial_id: str | None = None,
    out_dir: Path | None = None,
    device: DeviceInfo | None = None,
    log: Callable[[str], None] | None = None,
    accuracy_gate: AccuracyGate | None = None,
    accuracy_reuse: AccuracyReuse | None = None,
    executor: Executor | None = None,
    reporter: Reporter | None = None,
) -> TrialResult:
    """Run one trial of `spec` with knob `values` (others from the baseline); return its result.

    `executor` defaults to the study's (`executor_for(spec)`); grid recording passes an
    `InProcessExecutor` that keeps models loaded. `reporter` (the study's pruner) sees each step the
    worker reports and may stop it: the result is then PRUNED with what it measured."""
    t0 = time.perf_counter()
    trial_id = trial_id or new_trial_id()
    out_dir = Path(out_dir or workbench_home() / "trials" / spec.name / trial_id).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or detect_device(spec.trial.device)
    executor = executor or executor_for(spec, log)
    executor.reporter = reporter
    plan = make_plan(
        spec,
        trial_id,
        values or {},
        device,
        cache_dir(spec),
        out_dir,
        accuracy_gate,
        accuracy_reuse,
        launcher=executor.launcher,
        keyed=False,
    )
    result_path = out_dir / "result.json"
    reason = get_engine_class(spec.engine).infeasible_reason(
        plan.knobs, device, feasibility_context(spec, plan.options())
    )
    if reason:
        res = TrialResult.infeasible(plan, reason)
    else:
        add_keys(plan, spec, executor.launcher)
        res = executor.measure(plan)
    if res.status == "COMPLETE":  # derived metrics, from any executor's result (a replayed grid too)
        res.metrics = {**res.metrics, **derived_metrics(spec, res)}
    if executor.adds_environment or reason:
        res.environment = {**collect_environment(device), **res.environment}
    res.files = {**res.files, "result": str(result_path)}
    res.timings_s = {**res.timings_s, "orchestrator_total": time.perf_counter() - t0}
    res.write(result_path)
    return res
