"""What a trtllm build is made of (the build key's material) and how each backend's build runs.

TensorRT backend: the translated build arguments, the GPU model (TensorRT tunes kernels per device
model: an H100 engine is not an H200 engine, though both are sm_90) and the calibration data's
content; the build runs `_tensorrt_engine.LLM(...).save()` in a child process (build_process.py).
PyTorch backend: the ModelOpt algorithm, the KV dtype and the calibration data's content, sample
count and length; the build exports a quantized HF checkpoint, also in a child process. Package
versions (tensorrt_llm, tensorrt, nvidia-modelopt, torch, transformers) come from the worker's
environment through the engine's `packages` (workbench.trials.cache.artifact_material).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import workbench.engines.trtllm.args as T
import workbench.engines.trtllm.calib as calib
from workbench.engines.base import EngineError, OpenContext
from workbench.engines.trtllm.knobs import TrtllmOptions, backend
from workbench.engines.trtllm.modelopt_build import ALGORITHMS


def calib_key(ctx: OpenContext) -> dict[str, Any]:
    """The calibration data's part of the key; an unusable source keys as its error (the build then
    stops with it), so planning never fails on it."""
    try:
        return calib.resolve(ctx.options, ctx.study_dir).key()
    except calib.CalibError as e:
        return {"unusable": str(e)}


def calib_source(ctx: OpenContext) -> calib.CalibSource:
    try:
        return calib.resolve(ctx.options, ctx.study_dir)
    except calib.CalibError as e:
        raise EngineError(str(e)) from e


def trt_options(ctx: OpenContext, needs_calibration: bool) -> dict[str, Any]:
    """The engine options with calib_dataset resolved for TensorRT-LLM's own loader (absolute folder)."""
    opts = dict(ctx.options)
    if needs_calibration:
        try:
            opts["calib_dataset"] = calib.trt_dataset_argument(calib_source(ctx))
        except calib.CalibError as e:
            raise EngineError(str(e)) from e
    return opts


def prequantized(ctx: OpenContext, quantization: str) -> str | None:
    """The study's pre-quantized checkpoint for this choice (a path relative to the study, or a hub id)."""
    ref = TrtllmOptions.model_validate(ctx.options).checkpoints.get(quantization)
    if ref is None:
        return None
    p = Path(ref).expanduser()
    if not p.is_absolute() and ctx.study_dir is not None and (Path(ctx.study_dir) / p).exists():
        return str((Path(ctx.study_dir) / p).resolve())
    return str(p) if p.exists() else ref


def needs_build(options: dict[str, Any], build_knobs: dict[str, Any]) -> bool:
    """TensorRT: always (an engine); PyTorch: a quantized choice the study does not map to a checkpoint."""
    if backend(options) == "tensorrt":
        return True
    q = build_knobs.get("quantization", "none")
    return q != "none" and q not in TrtllmOptions.model_validate(options).checkpoints


def material(ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
    """What the build key hashes: equal artifacts share a key whatever the spelling, and only they."""
    knobs = {**ctx.knobs, **build_knobs}
    if backend(ctx.options) == "tensorrt":
        return _trt_material(ctx, knobs)
    return _torch_material(ctx, knobs)


def _trt_material(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    q = T.quantization(knobs)
    args = T.build_args(knobs, dict(ctx.options, calib_dataset=None), ctx.model_dtype, ctx.load_format)
    out: dict[str, Any] = {"backend": "tensorrt", "args": args, "gpu": ctx.device.name}
    if q.needs_calibration:
        out["calib"] = calib_key(ctx)
    return out


def _torch_material(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    q = knobs["quantization"]
    out: dict[str, Any] = {"backend": "pytorch", "quantization": q, "kv_cache_dtype": knobs["kv_cache_dtype"]}
    ckpt = prequantized(ctx, q)
    if ckpt is not None:
        return {**out, "checkpoint": ckpt}
    if q == "none":
        return out
    opts = TrtllmOptions.model_validate(ctx.options)
    return {
        **out,
        "modelopt_config": ALGORITHMS.get(q),
        "calib": calib_key(ctx),
        "calib_samples": opts.calib_samples,
        "calib_max_seq_length": opts.calib_max_seq_length,
        "calib_batch_size": opts.calib_batch_size,
        "calib_device": ctx.device.kind,
    }


def modelopt_request(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    """The child's request of a ModelOpt build: model, algorithm, KV dtype and the calibration texts."""
    opts = TrtllmOptions.model_validate(ctx.options)
    return child_request(ctx, knobs["quantization"], knobs["kv_cache_dtype"], opts)


def child_request(ctx: OpenContext, algorithm: str, kv_cache_dtype: str, opts: Any) -> dict[str, Any]:
    """A ModelOpt build child's request for any engine whose options carry the `calib_*` fields (trtllm,
    vllm): `algorithm` is a `modelopt_build.ALGORITHMS` name; random weights for `load_format: dummy`."""
    texts = calib.load_texts(calib_source(ctx), opts.calib_samples, opts.calib_text_field)
    return {
        "model_source": ctx.model_source,
        "revision": ctx.model_revision,
        "dtype": ctx.model_dtype,
        "device": "cuda" if ctx.device.kind == "cuda" else "cpu",
        "trust_remote_code": ctx.trust_remote_code,
        "random_weights": ctx.load_format == "dummy",
        "tokenizer": ctx.tokenizer,
        "quantization": algorithm,
        "kv_cache_dtype": kv_cache_dtype,
        "texts": texts,
        "calib_max_seq_length": opts.calib_max_seq_length,
        "calib_batch_size": opts.calib_batch_size,
    }


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
