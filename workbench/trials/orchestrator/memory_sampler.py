"""Memory of a running trial, measured from outside the worker: process-tree RSS, or NVML by GPU.

The worker may run in an environment without psutil or pynvml, or in a container whose processes
are not the orchestrator's children; so the executor samples and the worker only writes phase marks
(`workbench.trials.worker.phase_marks.PhaseMarks`). After the trial the samples are split by those marks into
per-phase peaks. On a GPU the reported figure is the device's used memory (TensorRT-LLM runs its
executor in other processes, which in-process counters would miss); the host RSS of the process
tree is always sampled too, for `trial.memory_limit_gb`.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def gpu_pids(device_index: int) -> list[int]:
    """Host pids of the processes using this GPU (a container's processes are found this way)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        return [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)]
    except Exception:  # no NVML here: nothing to add
        return []


def _hwm(pid: int) -> int:
    """The kernel's RSS high-water mark of one process: it cannot miss a spike between samples."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class TreeSampler:
    """A background thread sampling the memory of the processes `roots()` names and their children."""

    def __init__(
        self,
        device_kind: str,
        device_index: int | None,
        roots: Callable[[], list[int]],
        interval_s: float = 0.02,
    ) -> None:
        self.kind = device_kind
        self.roots = roots
        self.interval = interval_s
        self.source = "process_rss"
        self._device: Any = None
        if device_kind == "cuda":
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._device = pynvml.nvmlDeviceGetHandleByIndex(device_index or 0)
            self.source = "nvml_device_used"
        self.samples: list[tuple[float, int]] = []
        self.rss = 0
        self.hwm = 0
        self._procs: list[psutil.Process] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memory-sampler")

    def _refresh(self) -> None:
        procs = []
        for pid in self.roots():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                procs += [p, *p.children(recursive=True)]
        self._procs = procs

    def _tree_rss(self) -> int:
        total = 0
        for p in self._procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def sample(self) -> None:
        self.rss = self._tree_rss()
        if self._procs:
            self.hwm = max(self.hwm, _hwm(self._procs[0].pid))
        v = int(self._nvml.nvmlDeviceGetMemoryInfo(self._device).used) if self._device else self.rss
        self.samples.append((time.time(), v))

    def _loop(self) -> None:
        tick = 0
        while not self._stop.is_set():
            if tick % 10 == 0:  # new children appear rarely; listing them costs more than reading them
                self._refresh()
            self.sample()
            tick += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._refresh()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, marks: list[tuple[str, float]]) -> dict[str, Any]:
        """Baseline (the last sample before the first mark), peak, and the peak of each marked phase."""
        values = [v for _, v in self.samples] or [0]
        times = [t for t, _ in self.samples]
        first = bisect.bisect_right(times, marks[0][1]) - 1 if marks else 0
        baseline = values[max(first, 0)]
        peak = max(values)
        if self.kind == "cpu":
            peak = max(peak, self.hwm)
        mark_times = [t for _, t in marks]
        phases: dict[str, int] = {}
        for name, t in marks:  # a phase shorter than the interval still gets the value at its start
            phases[name] = max(phases.get(name, 0), values[max(bisect.bisect_right(times, t) - 1, 0)])
        for t, v in self.samples:
            i = bisect.bisect_right(mark_times, t) - 1
            name = marks[i][0] if i >= 0 else "start"
            phases[name] = max(phases.get(name, 0), v)
        return {
            "source": self.source,
            "baseline_bytes": baseline,
            "peak_bytes": peak,
            "peak_above_baseline_bytes": peak - baseline,
            "phase_peak_above_baseline_bytes": {k: v - baseline for k, v in phases.items()},
        }
