"""Builds in a child process: its CUDA context, caches and memory peak are its own, never the trial's.

A TensorRT build (`_tensorrt_engine.LLM(...)` then `save()`) starts a full executor and a ModelOpt
calibration loads the whole model; done in the trial's worker, that peak would be recorded as the
trial's serving memory and the CUDA context and allocator caches would stay until the worker exits.
Here the parent writes the request, runs `python -m workbench.engines.trtllm.build_child REQ OUT`
(the same interpreter: the worker's environment), samples the GPU's used memory while it runs, and
returns the child's answer with `build_peak` (GPU bytes above the baseline, the child's own RSS peak).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import BuildError


class _GpuPeak:
    """The device's used memory, polled until stopped (NVML; nothing on a machine without it)."""

    def __init__(self, device_index: int | None, interval_s: float = 0.2):
        self.index = device_index
        self.interval = interval_s
        self.baseline = self.peak = self._used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> int | None:
        if self.index is None:
            return None
        from workbench.devicemem import nvml_used

        try:
            return nvml_used(self.index)
        except Exception:  # noqa: BLE001 - no NVML: no GPU figure
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            u = self._used()
            if u is not None and (self.peak is None or u > self.peak):
                self.peak = u

    def __enter__(self) -> _GpuPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_child(
    kind: str, req: dict[str, Any], out_dir: Path, device_index: int | None, log: Path
) -> dict[str, Any]:
    """Run one build in a child process; its answer plus its peaks. `kind`: "modelopt" (a quantized
    checkpoint), or "builder" with `req["builder"]` naming an engine's build function ("module:function",
    called with the request and `out_dir`: trtllm-tensorrt's engine build)."""
    req_path = out_dir / "build_request.json"
    res_path = out_dir / "build_result.json"
    req_path.write_text(json.dumps({"kind": kind, "out_dir": str(out_dir), **req}, default=str))
    cmd = [sys.executable, "-m", "workbench.engines.trtllm.build_child", str(req_path), str(res_path)]
    t0 = time.perf_counter()
    with open(log, "w") as f, _GpuPeak(device_index) as gpu:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ))
    wall = time.perf_counter() - t0
    if rc != 0 or not res_path.is_file():
        tail = log.read_text()[-3000:] if log.is_file() else ""
        raise BuildError(f"the {kind} build process exited with {rc} (log {log}):\n{tail}")
    res = json.loads(res_path.read_text())
    res_path.unlink()
    req_path.unlink()
    gpu_peak = None if gpu.peak is None or gpu.baseline is None else gpu.peak - gpu.baseline
    res["build_peak"] = {
        **res.pop("child_peak", {}),
        "gpu_used_above_baseline_bytes": gpu_peak,
        "wall_s": wall,
    }
    res["build_process"] = "separate"
    return res
