"""What a trtllm-tensorrt build is made of (the build key's material) and the build's request.

The translated build arguments, the GPU model (TensorRT tunes kernels per device model: an H100
engine is not an H200 engine, though both are sm_90) and the calibration data's content; the build
runs `_tensorrt_engine.LLM(...).save()` in a child process (trtllm/build_process.py). Package versions
come from the worker's environment through the engine's `packages`.
"""

from __future__ import annotations

from typing import Any

import workbench.engines.trtllm.calib as calib
import workbench.engines.trtllm_tensorrt.args as T
from workbench.engines.base import EngineError, OpenContext
from workbench.engines.trtllm.build import calib_key, calib_source
from workbench.engines.trtllm_tensorrt.knobs import TensorrtOptions


def material(ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
    """What the build key hashes: equal engines share a key whatever the knob spelling, and only they."""
    return _trt_material(ctx, {**ctx.knobs, **build_knobs})


def trt_options(ctx: OpenContext, needs_calibration: bool) -> TensorrtOptions:
    """The engine options with calib_dataset resolved for TensorRT-LLM's own loader (absolute folder)."""
    if not needs_calibration:
        return ctx.options
    try:
        return ctx.options.model_copy(update={"calib_dataset": calib.trt_dataset_argument(calib_source(ctx))})
    except calib.CalibError as e:
        raise EngineError(str(e)) from e


def _trt_material(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    q = T.quantization(knobs)
    args = T.build_args(
        knobs, ctx.options.model_copy(update={"calib_dataset": None}), ctx.model_dtype, ctx.load_format
    )
    out: dict[str, Any] = {"backend": "tensorrt", "args": args, "gpu": ctx.device.name}
    if q.needs_calibration:
        out["calib"] = calib_key(ctx)
    return out


def trt_request(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    """The child's request of a TensorRT build: the translated arguments with the calibration resolved."""
    q = T.quantization(knobs)
    args = T.build_args(knobs, trt_options(ctx, q.needs_calibration), ctx.model_dtype, ctx.load_format)
    return {
        "model": ctx.model_source,
        "tokenizer": ctx.tokenizer or ctx.model_source,
        "revision": ctx.model_revision,
        "trust_remote_code": ctx.trust_remote_code,
        "args": args,
    }
