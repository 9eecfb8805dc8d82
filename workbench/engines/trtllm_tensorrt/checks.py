"""Problems in a trtllm-tensorrt study's `engine_options:` that need the file system (at validation)."""

from __future__ import annotations

from typing import Any

from workbench.engines.trtllm.checks import calib_problems


def option_problems(options: dict[str, Any], study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
    """The calibration source, as TensorRT-LLM's own loader will take it."""
    return calib_problems(options, study_dir, tensorrt_loader=True)
