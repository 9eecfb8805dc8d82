"""Problems in a trtllm-tensorrt study's `engine_options:` that need the file system (at validation)."""

from __future__ import annotations

from workbench.engines.trtllm.checks import calib_problems
from workbench.engines.trtllm_tensorrt.knobs import TensorrtOptions


def option_problems(options: TensorrtOptions, study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    """The calibration source, as TensorRT-LLM's own loader will take it."""
    return calib_problems(options, study_dir, tensorrt_loader=True)
