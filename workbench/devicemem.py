"""Device memory seen from outside any engine: NVML's count of bytes in use on a GPU.

Engines that run their executor in other processes (TensorRT-LLM) release memory asynchronously;
they wait here for the device to return to its baseline before the next trial measures anything.
The trial layer's sampler reads the same counter. Only `pynvml` is imported, inside the functions.
"""

from __future__ import annotations

import time


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
