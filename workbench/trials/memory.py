"""Memory measured from outside the engine: NVML on a GPU, process RSS on CPU.

TensorRT-LLM runs its executor in another process, so in-process allocator counters would miss
most of it; device-level NVML (or the worker's RSS) sees everything. A background thread samples
the peak; each phase (load, benchmark) gets its own peak.
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any


class MemorySampler:
    def __init__(self, device_kind: str, device_index: int = 0, interval_s: float = 0.01):
        self.kind = device_kind
        self.interval = interval_s
        self._read = self._rss
        self.source = "process_rss"
        if device_kind == "cuda":
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self._read = self._nvml_used
            self.source = "nvml_device_used"
        else:
            import psutil

            self._proc = psutil.Process()
        self.baseline = self._read()
        self.peak = self.baseline
        self.phase = "start"
        self.phase_peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memory-sampler")

    def _rss(self) -> int:
        return int(self._proc.memory_info().rss)

    def _nvml_used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> int:
        v = self._read()
        self.peak = max(self.peak, v)
        self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), v)
        return v

    def mark(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def report(self) -> dict[str, Any]:
        peak = self.peak
        if self.kind == "cpu":
            # the kernel's high-water mark cannot miss a short spike between samples
            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return {
            "source": self.source,
            "baseline_bytes": self.baseline,
            "peak_bytes": peak,
            "peak_above_baseline_bytes": peak - self.baseline,
            "phase_peak_above_baseline_bytes": {k: v - self.baseline for k, v in self.phase_peaks.items()},
        }


def nvml_used(device_index: int) -> int:
    """Device memory in use now (all processes), from NVML."""
    import pynvml

    pynvml.nvmlInit()
    return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(device_index)).used)


def wait_for_release(
    device_index: int, baseline_bytes: int, tolerance_bytes: int = 256 * 1024**2, timeout_s: float = 60.0
) -> bool:
    """Poll NVML until device memory is back near the baseline (after an engine shut down)."""
    import pynvml

    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(device_index)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pynvml.nvmlDeviceGetMemoryInfo(h).used <= baseline_bytes + tolerance_bytes:
            return True
        time.sleep(0.25)
    return False
