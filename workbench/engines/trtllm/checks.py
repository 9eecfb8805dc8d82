"""Problems in a trtllm study's `engine_options:` that need the file system (reported at validation).

A calibration dataset that does not exist, a hub dataset without `calib_allow_hub`, or a hub name the
TensorRT backend's loader rejects would otherwise fail minutes into a build; a pre-quantized
checkpoint mapped to a choice the PyTorch backend does not know would never be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.engines.trtllm import calib
from workbench.engines.trtllm.knobs import TORCH_QUANTIZATIONS, backend


def option_problems(options: dict[str, Any], study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    if options.get("calib_dataset") is not None:
        try:
            src = calib.resolve(options, study_dir)
            if backend(options) == "tensorrt":
                calib.trt_dataset_argument(src)
        except calib.CalibError as e:
            out.append((("calib_dataset",), str(e).removeprefix("engine_options.calib_dataset: ")))
    for choice, ref in (options.get("checkpoints") or {}).items():
        if choice not in TORCH_QUANTIZATIONS or choice == "none":
            allowed = ", ".join(q for q in TORCH_QUANTIZATIONS if q != "none")
            out.append((("checkpoints", choice), f"not a PyTorch-backend quantization; allowed: {allowed}"))
        p = Path(ref).expanduser()
        local = ref.startswith((".", "/", "~"))
        if local and not (p if p.is_absolute() else Path(study_dir or ".") / p).exists():
            out.append((("checkpoints", choice), f"{ref} does not exist (relative to the study file)"))
    if options.get("checkpoints") and backend(options) == "tensorrt":
        out.append((("checkpoints",), "pre-quantized checkpoints are for backend: pytorch"))
    return out
