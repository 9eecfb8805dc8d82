"""Problems in a trtllm study's `engine_options:` that need the file system (reported at validation).

A calibration dataset that does not exist, a hub dataset without `calib_allow_hub`, or (for
trtllm-tensorrt) a hub name TensorRT-LLM's own loader rejects would otherwise fail minutes into a
build; a pre-quantized checkpoint mapped to a choice the PyTorch backend does not know would never
be used.
"""

from __future__ import annotations

from pathlib import Path

import workbench.engines.trtllm.calib as calib
from workbench.engines.trtllm.knobs import TORCH_QUANTIZATIONS, LlmApiOptions, TrtllmOptions


def option_problems(options: TrtllmOptions, study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    out += calib_problems(options, study_dir)
    draft = options.speculative_model
    if isinstance(draft, str) and draft.startswith((".", "~")):
        out.append((("speculative_model",), "a hub id or an absolute path (the worker may run elsewhere)"))
    elif isinstance(draft, str) and draft.startswith("/") and not Path(draft).exists():
        out.append((("speculative_model",), f"{draft} does not exist"))
    for choice, ref in options.checkpoints.items():
        if choice not in TORCH_QUANTIZATIONS or choice == "none":
            allowed = ", ".join(q for q in TORCH_QUANTIZATIONS if q != "none")
            out.append((("checkpoints", choice), f"not a PyTorch-backend quantization; allowed: {allowed}"))
        p = Path(ref).expanduser()
        local = ref.startswith((".", "/", "~"))
        if local and not (p if p.is_absolute() else Path(study_dir or ".") / p).exists():
            out.append((("checkpoints", choice), f"{ref} does not exist (relative to the study file)"))
    return out


def calib_problems(
    options: LlmApiOptions, study_dir: str | None, *, tensorrt_loader: bool = False
) -> list[tuple[tuple[str, ...], str]]:
    """A calibration source that does not resolve (or, for TensorRT-LLM's own loader, that it rejects)."""
    if options.calib_dataset is None:
        return []
    try:
        src = calib.resolve(options, study_dir)
        if tensorrt_loader:
            calib.trt_dataset_argument(src)
    except calib.CalibError as e:
        return [(("calib_dataset",), str(e).removeprefix("engine_options.calib_dataset: "))]
    return []


def setups_here(trtllm_here: bool) -> list[str]:
    """One line per way of running the trtllm engine, each saying whether it works on this machine."""
    import importlib.util
    import shutil

    def have(m: str) -> bool:
        return importlib.util.find_spec(m) is not None

    runtimes = [r for r in ("docker", "podman", "apptainer") if shutil.which(r)]
    gpu = _nvidia_gpu()
    a = "works" if trtllm_here else "not here (tensorrt_llm is not importable in this interpreter)"
    if runtimes and gpu:
        b = f"possible ({', '.join(runtimes)} and an NVIDIA GPU found; `workbench doctor STUDY` checks the runtime)"
    else:
        b = (
            "not here ("
            + ("no docker/podman/apptainer" if not runtimes else "no NVIDIA GPU seen by NVML")
            + ")"
        )
    mo = all(have(m) for m in ("modelopt", "torch", "transformers"))
    c = (
        "works here (FP8/AWQ on CPU or GPU; NVFP4 needs CUDA)"
        if mo
        else "needs nvidia-modelopt, torch, transformers"
    )
    return [
        f"(a) workbench inside tensorrt-llm/release:1.2.1 (or any env with tensorrt_llm): {a}",
        f"(b) workbench here, trial worker in the container (runtime: container): {b}",
        f"ModelOpt build step (quantized checkpoints): {c}",
    ]


def _nvidia_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:  # noqa: BLE001 - no driver, no NVML: no GPU
        return False
