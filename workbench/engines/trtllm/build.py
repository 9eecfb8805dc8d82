"""What a trtllm build is made of (the build key's material) and the calibration both engines use.

The ModelOpt algorithm, the KV dtype and the calibration data's content, sample count and length;
the build exports a quantized HF checkpoint in a child process (build_process.py). Package
versions (tensorrt_llm, tensorrt, nvidia-modelopt, torch, transformers) come from the worker's
environment through the engine's `packages` (workbench.trials.cache.artifact_material).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import workbench.engines.trtllm.calib as calib
from workbench.engines.base import EngineError, OpenContext
from workbench.engines.trtllm.knobs import TrtllmOptions
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


def prequantized(ctx: OpenContext, quantization: str) -> str | None:
    """The study's pre-quantized checkpoint for this choice (a path relative to the study, or a hub id)."""
    ref = ctx.options.checkpoints.get(quantization)
    if ref is None:
        return None
    p = Path(ref).expanduser()
    if not p.is_absolute() and ctx.study_dir is not None and (Path(ctx.study_dir) / p).exists():
        return str((Path(ctx.study_dir) / p).resolve())
    return str(p) if p.exists() else ref


def needs_build(options: TrtllmOptions, build_knobs: dict[str, Any]) -> bool:
    """A quantized choice the study does not map to a pre-quantized checkpoint."""
    q = build_knobs.get("quantization", "none")
    return q != "none" and q not in options.checkpoints


def material(ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
    """What the build key hashes: equal artifacts share a key whatever the spelling, and only they."""
    return _torch_material(ctx, {**ctx.knobs, **build_knobs})


def _torch_material(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    q = knobs["quantization"]
    out: dict[str, Any] = {"backend": "pytorch", "quantization": q, "kv_cache_dtype": knobs["kv_cache_dtype"]}
    ckpt = prequantized(ctx, q)
    if ckpt is not None:
        return {**out, "checkpoint": ckpt}
    if q == "none":
        return out
    opts: TrtllmOptions = ctx.options
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
    return child_request(ctx, knobs["quantization"], knobs["kv_cache_dtype"], ctx.options)


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
