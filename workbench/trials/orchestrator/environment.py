"""Where a number was measured: device, driver, packages and git commit (for MLflow tags and reports).

Runs in the light orchestrating process: NVML and importlib.metadata only, never torch.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.engines.base import DeviceInfo
from workbench.types import DeviceError

PACKAGES = (
    "workbench",
    "torch",
    "transformers",
    "accelerate",
    "torchao",
    "optuna",
    "mlflow",
    "lm_eval",
    "tensorrt_llm",
    "tensorrt",
    "nvidia-ml-py",
)


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:
        return None


def _visible_index(index: int) -> int:
    """NVML counts all GPUs; CUDA_VISIBLE_DEVICES may renumber them."""
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    if vis:
        parts = [p.strip() for p in vis.split(",") if p.strip()]
        if index < len(parts) and parts[index].isdigit():
            return int(parts[index])
    return index


def detect_device(requested: str = "auto", index: int = 0) -> DeviceInfo:
    """The device a trial will run on, found through NVML (no torch import)."""
    nv = _nvml() if requested in ("auto", "cuda") else None
    if nv is not None and nv.nvmlDeviceGetCount() > 0 and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "":
        h = nv.nvmlDeviceGetHandleByIndex(_visible_index(index))
        name = nv.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else name
        cc = nv.nvmlDeviceGetCudaComputeCapability(h)
        return DeviceInfo(
            # the index is NVML's (physical) one: memory sampling must watch the GPU this worker sees
            "cuda",
            name,
            int(nv.nvmlDeviceGetMemoryInfo(h).total),
            (int(cc[0]), int(cc[1])),
            _visible_index(index),
        )
    if requested == "cuda":
        raise DeviceError(
            "trial.device is 'cuda' but NVML finds no NVIDIA GPU on this machine "
            "(set trial.device: auto or cpu, or run the study on a GPU host)"
        )
    import psutil

    return DeviceInfo("cpu", _cpu_model(), int(psutil.virtual_memory().total), None, None)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """Commit of the workbench checkout (where the package lives), and whether it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def collect_environment(device: DeviceInfo) -> dict[str, Any]:
    import psutil

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": int(psutil.virtual_memory().total),
        "device": {
            "kind": device.kind,
            "name": device.name,
            "arch": device.arch,
            "total_memory_bytes": device.total_memory_bytes,
        },
        "packages": package_versions(),
        "git": git_state(),
    }
    if device.kind == "cuda":
        nv = _nvml()
        if nv is not None:
            h = nv.nvmlDeviceGetHandleByIndex(_visible_index(device.index or 0))
            gpu: dict[str, Any] = {"driver": _s(nv.nvmlSystemGetDriverVersion())}
            for key, fn in {
                "cuda_driver_version": lambda: nv.nvmlSystemGetCudaDriverVersion(),
                "sm_clock_max_mhz": lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM),
                "mem_clock_max_mhz": lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM),
                "power_limit_w": lambda: nv.nvmlDeviceGetPowerManagementLimit(h) / 1000,
                "persistence_mode": lambda: nv.nvmlDeviceGetPersistenceMode(h),
            }.items():
                try:
                    gpu[key] = fn()
                except Exception:  # not every driver answers every query
                    continue
            env["gpu"] = gpu
    return env


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
