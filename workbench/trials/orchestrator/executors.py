"""How a planned trial is measured: a watched worker process, this process (grid recording), or a replay.

`SubprocessExecutor` starts the worker through a launcher (this interpreter, another environment, a
container) and watches it from outside: the timeout, `trial.memory_limit_gb` on the RSS of its
process tree, kill -9 of everything it started, and the memory sampler whose samples the worker's
phase marks split into per-phase peaks. `InProcessExecutor` runs the same measurement steps here,
keeping loaded models in a `ModelPool` between grid points. `ReplayExecutor` answers from a recorded
grid (`workbench.engines.replay`). Every executor returns a `TrialResult`; none raises for a trial
that failed.
"""

from __future__ import annotations

import abc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.spec import StudySpec
from workbench.trials.orchestrator.launchers import (
    Launcher,
    LocalLauncher,
    WorkerCall,
    container_name,
    launcher_for,
)
from workbench.trials.orchestrator.memory_sampler import TreeSampler
from workbench.trials.orchestrator.pool import ModelPool
from workbench.trials.plan import TrialPlan
from workbench.trials.result import Failure, TrialResult
from workbench.trials.worker.measure import apply_memory, measure
from workbench.trials.worker.phase_marks import MARKS_FILE, PhaseMarks, read_marks
from workbench.trials.worker.progress import PROGRESS_FILE, ProgressReader

#: what a watched trial's progress goes to: (step, metrics) -> the reason to stop it, or None
Reporter = Callable[[int, dict[str, Any]], "str | None"]


class Executor(abc.ABC):
    #: whether run_trial adds this machine's environment to the result (not for replayed results)
    adds_environment: bool = True
    launcher: Launcher | None = None
    #: the study's pruner for this trial (`study.pruning.Reporter`); None: nothing watches its progress
    reporter: Reporter | None = None

    @abc.abstractmethod
    def measure(self, plan: TrialPlan) -> TrialResult:
        """Measure the planned trial; failures are recorded in the result, never raised."""


def executor_for(spec: StudySpec, log: Callable[[str], None] | None = None) -> Executor:
    """The executor of a study's engine: a replay, or a worker process through the study's launcher."""
    from workbench.engines import get_engine_class

    if get_engine_class(spec.engine).executor == "replay":
        return ReplayExecutor(str(spec.source_path.parent) if spec.source_path else None)
    return SubprocessExecutor(
        launcher_for(spec.runtime),
        timeout_s=spec.trial.timeout_s,
        memory_limit_gb=spec.trial.memory_limit_gb,
        env=dict(spec.runtime.env),
    )


class SubprocessExecutor(Executor):
    """The worker in its own process, started by `launcher`, watched and sampled from here."""

    def __init__(
        self,
        launcher: Launcher | None = None,
        *,
        timeout_s: float = 3600.0,
        memory_limit_gb: float | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.launcher = launcher or LocalLauncher()
        self.timeout_s = timeout_s
        self.memory_limit_gb = memory_limit_gb
        self.env = env or {}

    def call(self, plan: TrialPlan) -> WorkerCall:
        """The worker process of this plan: its files, the folders it uses, its environment."""
        out = Path(plan.out_dir)
        env = {
            "WORKBENCH_DEADLINE_S": str(self.timeout_s * 0.95),
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **self.env,
        }
        if plan.device_kind == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        # the study's folder too: engine options name files relative to it (calibration data)
        readable = [
            p for p in (plan.model_source, plan.dataset_path, plan.accuracy_data_path, plan.study_dir) if p
        ]
        return WorkerCall(
            plan_path=out / "plan.json",
            result_path=out / "result.json",
            name=container_name(plan.study, plan.trial_id),
            writable=[out, Path(plan.cache_dir)],
            readable=[Path(p) for p in readable if Path(p).exists()],
            env=env,
            device_kind=plan.device_kind,
            device_index=plan.device_index,
            threads=plan.threads,
            memory_limit_gb=self.memory_limit_gb,
        )

    def measure(self, plan: TrialPlan) -> TrialResult:
        call = self.call(plan)
        log_path = Path(plan.out_dir) / "worker.log"
        Path(plan.cache_dir).mkdir(parents=True, exist_ok=True)
        call.plan_path.write_text(plan.model_dump_json(indent=2))
        call.result_path.unlink(missing_ok=True)
        cmd = self.launcher.command(call)
        progress = Path(plan.out_dir) / PROGRESS_FILE
        progress.unlink(missing_ok=True)
        watch = Watch(self.launcher, call, self.timeout_s, self.memory_limit_gb, log_path)
        watch.progress = None if self.reporter is None else (ProgressReader(progress), self.reporter)
        failure = watch.run(cmd)
        if failure is None:
            res = TrialResult.read(call.result_path)
        elif failure.kind == "pruned":  # stopped by the pruner: what it had measured stays
            res = TrialResult.unrun(plan, "PRUNED", failure)
            res.metrics = dict(watch.last_metrics)
            res.bench = {"progress": watch.steps}
        else:
            res = TrialResult.unrun(plan, "FAILED", failure)
        if watch.sampler is not None:
            apply_memory(res, watch.sampler.report(read_marks(Path(plan.out_dir) / MARKS_FILE)))
        res.environment = {
            "worker": res.environment,
            "launcher": {**self.launcher.describe(), "command": cmd},
        }
        res.files = {**res.files, "plan": str(call.plan_path), "log": str(log_path)}
        return res


class Watch:
    """One worker process under watch: timeout, memory limit, Ctrl-C, and how it ended."""

    def __init__(
        self, launcher: Launcher, call: WorkerCall, timeout_s: float, limit_gb: float | None, log_path: Path
    ) -> None:
        self.launcher, self.call, self.timeout = launcher, call, timeout_s
        self.limit, self.log_path = limit_gb, log_path
        self.sampler: TreeSampler | None = None
        #: (reader of the worker's progress file, the pruner's reporter); None: progress is not watched
        self.progress: tuple[ProgressReader, Reporter] | None = None
        self.steps: list[dict[str, Any]] = []
        self.last_metrics: dict[str, Any] = {}

    def run(self, cmd: list[str]) -> Failure | None:
        """Run `cmd` to its end; a Failure when the process itself failed (not the trial inside it).

        No `preexec_fn`: with one, CPython runs the at-fork handlers (logging's takes its lock) in this
        process around the fork, and a Ctrl-C landing there was lost and left the lock held (a hang).
        Without one, no Python code runs around the fork; the kernel's parent-death signal is set by
        a tiny exec shim instead, and a Ctrl-C during the start is held until `proc` exists.
        """
        pending: list[int] = []
        restore = hold_interrupt(pending)
        proc: subprocess.Popen[bytes] | None = None
        try:
            with open(self.log_path, "w") as logf:
                proc = subprocess.Popen(
                    dies_with_parent(cmd),
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    env=self.launcher.process_env(self.call),
                    start_new_session=True,
                )
            restore()
            if pending:
                raise KeyboardInterrupt
            self.sampler = TreeSampler(
                self.call.device_kind, self.call.device_index, _Roots(self.launcher, proc, self.call)
            )
            with self.sampler:
                failure = self._wait(proc)
        except KeyboardInterrupt:
            restore()
            if proc is not None:
                self.launcher.kill(proc, self.call)
            return Failure(kind="interrupted", message="interrupted by the user (Ctrl-C)")
        finally:
            restore()
        return failure if failure is not None else self._ended(proc)

    def _wait(self, proc: subprocess.Popen[bytes]) -> Failure | None:
        t0 = time.monotonic()
        assert self.sampler is not None
        try:
            while proc.poll() is None:
                if time.monotonic() - t0 > self.timeout:
                    self.launcher.kill(proc, self.call)
                    return Failure(
                        kind="timeout",
                        detail=_tail(self.log_path),
                        message=f"the trial exceeded trial.timeout_s={self.timeout:g} s and was killed",
                    )
                reason = self._pruned()
                if reason is not None:
                    self.launcher.kill(proc, self.call)
                    return Failure(kind="pruned", message=reason)
                rss = self.sampler.rss
                if self.limit is not None and rss > self.limit * 1024**3:
                    self.launcher.kill(proc, self.call)
                    return Failure(
                        kind="oom",
                        detail=_tail(self.log_path),
                        message=f"out of memory: the worker used {rss / 1024**3:.2f} GB, "
                        f"over trial.memory_limit_gb={self.limit:g}; it was killed",
                    )
                time.sleep(0.05)
        except KeyboardInterrupt:
            self.launcher.kill(proc, self.call)
            return Failure(kind="interrupted", message="interrupted by the user (Ctrl-C)")
        return None

    def _pruned(self) -> str | None:
        """Hand the worker's new progress steps to the pruner; its reason to stop the trial, or None."""
        if self.progress is None:
            return None
        reader, reporter = self.progress
        for line in reader.new():
            self.steps.append(line)
            self.last_metrics = line.get("metrics", {})
            reason = reporter(int(line["step"]), self.last_metrics)
            if reason is not None:
                return reason
        return None

    def _ended(self, proc: subprocess.Popen[bytes]) -> Failure | None:
        rc = proc.returncode
        if rc == 0 and self.call.result_path.exists():
            return None
        if rc is not None and self.launcher.kind == "container" and rc > 128:
            rc = -(rc - 128)  # the container runtime reports a signal as 128 + its number
        if rc is not None and rc < 0:
            sig = signal.Signals(-rc).name
            hint = " (the kernel's out-of-memory killer, or an external kill)" if sig == "SIGKILL" else ""
            return Failure(
                kind="crash", message=f"the worker was killed by {sig}{hint}", detail=_tail(self.log_path)
            )
        if rc == 0:
            return Failure(kind="crash", message="the worker wrote no result", detail=_tail(self.log_path))
        return Failure(
            kind="crash",
            message=f"the worker exited with code {rc} without a result",
            detail=_tail(self.log_path),
        )


class _Roots:
    """The processes to sample, asked of the launcher (a container's are found once it has started)."""

    def __init__(self, launcher: Launcher, proc: subprocess.Popen[bytes], call: WorkerCall) -> None:
        self.launcher, self.proc, self.call = launcher, proc, call
        self.found: list[int] = []

    def __call__(self) -> list[int]:
        if self.launcher.kind != "container":
            return [self.proc.pid]
        if not self.found or self.call.device_kind == "cuda":
            self.found = self.launcher.watched_pids(self.proc, self.call)
        return self.found


class InProcessExecutor(Executor):
    """The worker's measurement in this process, keeping loaded models between points (grid recording).

    Loading (or randomly initialising) an 8 B model costs more than measuring one configuration, so a
    grid on a GPU reuses it; everything after the load is the worker's own code. The pool is cleared
    when the build knobs change, before the next point's memory baseline, so a point never counts
    another configuration's weights.
    """

    def __init__(self, pool: ModelPool | None = None, *, timeout_s: float = 3600.0) -> None:
        self.pool = pool if pool is not None else ModelPool()
        self.timeout_s = timeout_s
        self._last_build: dict[str, Any] | None = None

    def measure(self, plan: TrialPlan) -> TrialResult:
        if self._last_build is not None and self._last_build != plan.build_knobs:
            self.pool.clear()
        self._last_build = dict(plan.build_knobs)
        marks = PhaseMarks(Path(plan.out_dir) / MARKS_FILE)
        sampler = TreeSampler(plan.device_kind, plan.device_index, lambda: [os.getpid()])
        with sampler:
            res = measure(plan, time.perf_counter() + self.timeout_s, marks, model_pool=self.pool)
        apply_memory(res, sampler.report(marks.marks))
        res.environment = {"worker": res.environment, "launcher": {"kind": "in_process"}}
        return res


class ReplayExecutor(Executor):
    """Trials answered from a recorded grid: nothing runs (`engine: replay`)."""

    adds_environment = False

    def __init__(self, study_dir: str | None) -> None:
        self.study_dir = study_dir

    def measure(self, plan: TrialPlan) -> TrialResult:
        from workbench.trials.orchestrator.replay import answer

        return answer(plan, self.study_dir)


#: run as `python -S -c SHIM PARENT_PID CMD...`: PR_SET_PDEATHSIG, then exec CMD (same pid, no Python left)
PDEATHSIG_SHIM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]):\n    os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def dies_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` started so that the kernel kills it if the orchestrator dies (even by kill -9), on Linux."""
    if sys.platform != "linux":
        return cmd
    return [sys.executable, "-S", "-c", PDEATHSIG_SHIM, str(os.getpid()), *cmd]


def hold_interrupt(pending: list[int]) -> Callable[[], None]:
    """Hold SIGINT (noted in `pending`) until the returned function is called (it may be called again)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    done: list[bool] = []

    def restore() -> None:
        if not done:
            done.append(True)
            signal.signal(signal.SIGINT, old)

    return restore


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
