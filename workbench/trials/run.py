"""Run one trial: resolve knobs, check feasibility, and run the worker subprocess under watch.

This is the orchestrator's side and stays light (no torch). The worker gets a plan file and writes
a result file; a timeout, a memory limit breach or a crash kills only that process, and the cause
is recorded in the result either way.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.engines import get_engine_class
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.knobs import split_knobs
from workbench.spec import StudySpec
from workbench.trials.environment import collect_environment, detect_device
from workbench.trials.plan import TrialPlan
from workbench.trials.result import Failure, TrialResult

DEFAULT_HOME = Path(".workbench")


def workbench_home() -> Path:
    return Path(os.environ.get("WORKBENCH_HOME", DEFAULT_HOME))


def resolve_knobs(spec: StudySpec, values: dict[str, Any]) -> dict[str, Any]:
    """Engine defaults < fixed knobs of the search space < the study's baseline < the trial's values."""
    defs = spec.engine_knobs()
    knobs = {**get_engine_class(spec.engine).default_knobs(), **spec.fixed_knobs(), **spec.baseline, **values}
    return {k: defs[k].check(v) for k, v in knobs.items()}


def feasibility_context(spec: StudySpec) -> FeasibilityContext:
    """What an engine may check before any work: the model's config.json, the longest requests, options."""
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
        options=spec.engine_options,
        study_dir=str(spec.source_path.parent) if spec.source_path else None,
    )


def new_trial_id() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def run_trial(
    spec: StudySpec,
    values: dict[str, Any] | None = None,
    *,
    trial_id: str | None = None,
    out_dir: Path | None = None,
    device: DeviceInfo | None = None,
    log: Callable[[str], None] | None = None,
    accuracy_gate: dict[str, Any] | None = None,
    accuracy_reuse: dict[str, Any] | None = None,
) -> TrialResult:
    """Run one trial of `spec` with knob `values` (others from the baseline); return its result."""
    t0 = time.perf_counter()
    trial_id = trial_id or new_trial_id()
    home = workbench_home()
    out_dir = Path(out_dir or home / "trials" / spec.name / trial_id).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    knobs = resolve_knobs(spec, values or {})
    device = device or detect_device(spec.trial.device)
    engine_cls = get_engine_class(spec.engine)
    build_knobs, runtime_knobs = split_knobs(engine_cls.knobs, knobs)
    env = collect_environment(device)
    result_path = out_dir / "result.json"
    files = {
        "result": str(result_path),
        "plan": str(out_dir / "plan.json"),
        "log": str(out_dir / "worker.log"),
    }

    def unrun(status: str, failure: Failure) -> TrialResult:
        """A result for a trial whose worker produced none (infeasible, or the process itself failed)."""
        return TrialResult(
            study=spec.name,
            trial_id=trial_id,
            status=status,
            engine=spec.engine,
            model=spec.model_source,
            knobs=knobs,
            build_knobs=build_knobs,
            runtime_knobs=runtime_knobs,
            failure=failure,
        )

    reason = engine_cls.infeasible_reason(knobs, device, feasibility_context(spec))
    if reason:
        res = unrun("INFEASIBLE", Failure(kind="infeasible", message=reason))
        res.environment = env
        res.files = {"result": str(result_path)}
        res.timings_s = {"orchestrator_total": time.perf_counter() - t0}
        res.write(result_path)
        return res

    if engine_cls.executor == "replay":  # e.g. replay: the answer is looked up, nothing is run
        res = engine_cls.answer(spec, knobs, trial_id)
        res.files = {"result": str(result_path)}
        res.timings_s = {**res.timings_s, "orchestrator_total": time.perf_counter() - t0}
        res.write(result_path)
        return res

    cache_dir = Path(spec.trial.cache_dir).expanduser() if spec.trial.cache_dir else home / "cache"
    plan = TrialPlan.make(
        spec, trial_id, knobs, device, cache_dir.resolve(), out_dir, accuracy_gate, accuracy_reuse
    )
    Path(files["plan"]).write_text(plan.model_dump_json(indent=2))
    result_path.unlink(missing_ok=True)
    worker_failure = _run_worker(plan, Path(files["plan"]), result_path, Path(files["log"]), spec, log)

    if result_path.exists() and worker_failure is None:
        res = TrialResult.read(result_path)
    else:
        res = unrun(
            "FAILED",
            worker_failure
            or Failure(kind="crash", message="the worker wrote no result", detail=_tail(Path(files["log"]))),
        )
    res.environment = {**env, "worker": res.environment}
    res.files = {**res.files, **files}
    res.timings_s = {**res.timings_s, "orchestrator_total": time.perf_counter() - t0}
    res.write(result_path)
    return res


def _run_worker(
    plan: TrialPlan,
    plan_path: Path,
    result_path: Path,
    log_path: Path,
    spec: StudySpec,
    log: Callable[[str], None] | None,
) -> Failure | None:
    """Run and watch the worker; return a Failure when the process itself failed (not the trial inside)."""
    env = {
        **os.environ,
        "WORKBENCH_DEADLINE_S": str(spec.trial.timeout_s * 0.95),
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    if plan.device_kind == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, "-m", "workbench.trials.worker", str(plan_path), str(result_path)]
    limit = spec.trial.memory_limit_gb
    timeout = spec.trial.timeout_s
    with open(log_path, "w") as logf:
        proc = subprocess.Popen(
            cmd,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        t0 = time.monotonic()
        peak_rss = 0
        try:
            import psutil

            ps = psutil.Process(proc.pid)
            while proc.poll() is None:
                if time.monotonic() - t0 > timeout:
                    _kill(proc)
                    return Failure(
                        kind="timeout",
                        message=f"the trial exceeded trial.timeout_s={timeout:g} s and was killed",
                        detail=_tail(log_path),
                    )
                if limit is not None:
                    try:
                        rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
                    except psutil.Error:
                        rss = 0
                    peak_rss = max(peak_rss, rss)
                    if rss > limit * 1024**3:
                        _kill(proc)
                        return Failure(
                            kind="oom",
                            message=f"out of memory: the worker used {rss / 1024**3:.2f} GB, "
                            f"over trial.memory_limit_gb={limit:g}; it was killed",
                            detail=_tail(log_path),
                        )
                time.sleep(0.05)
        except KeyboardInterrupt:
            _kill(proc)
            return Failure(kind="interrupted", message="interrupted by the user (Ctrl-C)")
    rc = proc.returncode
    if rc == 0 and result_path.exists():
        return None
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc).name
        hint = " (the kernel's out-of-memory killer, or an external kill)" if sig == "SIGKILL" else ""
        return Failure(kind="crash", message=f"the worker was killed by {sig}{hint}", detail=_tail(log_path))
    return Failure(
        kind="crash", message=f"the worker exited with code {rc} without a result", detail=_tail(log_path)
    )


def _die_with_parent() -> None:
    """In the child: the kernel kills the worker if the orchestrator dies (even by kill -9)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
