"""What `workbench doctor` says about vLLM here: is it importable, which version, where its server program is.

The engines are held to vLLM 0.26.0's recorded arguments; another version may have renamed some, so
doctor names the version it found. A GPU is reported by doctor itself (NVML).
"""

from __future__ import annotations

import importlib.util
import shutil
from importlib import metadata

RECORDED = "0.26.0"


def installed_version() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        return metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return "unknown"


def setups_here() -> list[str]:
    """One line per set-up: vLLM in this interpreter, its `vllm` program, and the other routes."""
    v = installed_version()
    if v is None:
        lines = [
            f"vLLM is not importable here; the engines are checked against vLLM {RECORDED} (torch 2.11.0, "
            "CUDA 13.0): install it into its own venv and set runtime.python (both engines) or "
            "engine_options.executable to its `vllm` program (the server)"
        ]
    else:
        same = v == RECORDED
        lines = [
            f"vLLM {v} is importable here"
            + (
                ""
                if same
                else f" (the arguments are recorded from vLLM {RECORDED}: "
                "a newer release may have renamed some)"
            )
        ]
    exe = shutil.which("vllm")
    lines.append(
        f"server program: {exe}" if exe else "no `vllm` program on PATH: set engine_options.executable"
    )
    lines.append("needs an NVIDIA GPU (engine_options.target_device: cpu only for a CPU build of vLLM)")
    return lines
