"""Whether a trtllm-tensorrt trial can run, decided before building: device, architecture, bounds, memory.

Each check is a short function returning a reason or None; `infeasible_reason` asks them in order.
The memory estimate works from config.json alone (workbench.estimate), so a study on a GPU it
cannot fit is pruned in the orchestrating process, before a build that would fail after minutes.
"""

from __future__ import annotations

from typing import Any

from workbench import estimate
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.engines.trtllm.feasibility import ARCHITECTURES, memory_reason, request_lengths
from workbench.engines.trtllm_tensorrt.args import paged_context_fmha
from workbench.engines.trtllm_tensorrt.knobs import TensorrtOptions, quantization

#: a CUDA context (driver state, cuBLAS/cuDNN workspaces); the LLM API makes one in the caller and one
#: in the executor process (BaseLlmArgs.validate_dtype queries the device in the caller)
CUDA_CONTEXT_BYTES = 0.6 * estimate.GiB


def _dtype_bytes(dtype: str) -> float:
    return 4.0 if dtype == "float32" else 2.0


def memory_estimate(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext, options: TensorrtOptions
) -> dict[str, float] | None:
    """Estimated weights, activations and KV pool (bytes, tokens), from config.json; None when unknown."""
    cfg = ctx.model_config
    try:
        q = quantization(knobs)
        dbytes = _dtype_bytes(ctx.model_dtype)
        total = device.total_memory_bytes * options.tensor_parallel_size
        fmt = "fp32" if q.weight_format == "bf16" and dbytes == 4.0 else q.weight_format
        weights = estimate.weight_bytes(cfg, fmt, dbytes)
        act = estimate.activation_bytes(cfg, int(knobs["engine_max_num_tokens"]), dbytes)
        kv_b = {"FP8": 1.0, "INT8": 1.0, "NVFP4": 0.5625}.get(q.kv_cache_quant_algo or "", dbytes)
        per_token = estimate.kv_bytes_per_token(cfg, kv_b)
        # runtime and decoder buffers sized by the engine's max batch: fp32 generation logits dominate
        batch_buffers = int(knobs["engine_max_batch_size"]) * int(cfg["vocab_size"]) * 4.0
    except (KeyError, TypeError, ValueError):
        return None
    overhead = options.runtime_overhead_gb * estimate.GiB + CUDA_CONTEXT_BYTES  # + the caller's context
    free_after = total - weights - act - batch_buffers - overhead
    pool = max(free_after, 0) * float(knobs["kv_cache_fraction"])
    return {
        "total_bytes": float(total),
        "weights_bytes": float(weights),
        "activation_bytes": float(act),
        "max_batch_buffers_bytes": float(batch_buffers),
        "overhead_bytes": float(overhead),
        "free_after_engine_bytes": float(free_after),
        "kv_pool_bytes": float(pool),
        "kv_bytes_per_token": float(per_token),
        "kv_pool_tokens": float(pool // per_token) if per_token else 0.0,
    }


def _device(knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext) -> str | None:
    """The GPU and its architecture: quantization algorithms, Blackwell's missing INT kernels, bfloat16."""
    if device.kind != "cuda":
        return "the trtllm-tensorrt engine needs an NVIDIA GPU; this trial's device is the CPU (use engine: hf there)"
    q = quantization(knobs)
    cc = device.compute_capability or (0, 0)
    if cc < q.min_cc:
        algo = f"{q.quant_algo or ''}{'+kv ' + q.kv_cache_quant_algo if q.kv_cache_quant_algo else ''}"
        need = ARCHITECTURES.get(q.min_cc, f"compute capability >= {q.min_cc[0]}.{q.min_cc[1]}")
        return (
            f"quantization {knobs['quantization']} ({algo}) needs {need}; {device.name} has {cc[0]}.{cc[1]}"
        )
    if (10, 0) <= cc < (12, 0) and q.weight_format in ("int8", "int4"):
        return (
            f"quantization {knobs['quantization']} ({q.quant_algo}): TensorRT-LLM's TensorRT backend does not "
            f"support INT8/INT4 weights or SmoothQuant on SM>=100; {device.name} has {cc[0]}.{cc[1]}"
        )
    if (10, 0) <= cc < (12, 0) and (
        q.kv_cache_quant_algo == "INT8" or q.quant_algo == "FP8_PER_CHANNEL_PER_TOKEN"
    ):
        what = "an INT8 KV cache" if q.kv_cache_quant_algo == "INT8" else "per-channel/per-token FP8 scaling"
        return (
            f"quantization {knobs['quantization']}: the 1.2.x TensorRT builder rejects {what} on SM 100-119; "
            f"{device.name} has {cc[0]}.{cc[1]}"
        )
    if ctx.model_dtype == "bfloat16" and cc < (8, 0):
        return f"bfloat16 needs compute capability >= 8.0; {device.name} has {cc[0]}.{cc[1]}"
    return None


def _kv_int8_chunking(knobs: dict[str, Any]) -> str | None:
    """Chunked prefill needs paged context FMHA, which the builder turns off with an INT8 KV cache and
    with an FP8 KV cache under an algorithm without FP8 context FMHA (kv_fp8, w4a16_awq + FP8 KV, ...)."""
    q = quantization(knobs)
    if knobs["chunked_prefill"] and not paged_context_fmha(q):
        kv = "an INT8" if q.kv_cache_quant_algo == "INT8" else "an FP8"
        return (
            f"{kv} KV cache turns off paged context FMHA in the TensorRT builder (quant_algo "
            f"{q.quant_algo or 'none'}), so chunked_prefill is unavailable with quantization {knobs['quantization']}"
        )
    return None


def _bounds(knobs: dict[str, Any]) -> str | None:
    """Runtime caps within the engine's build caps; the prompt within the sequence."""
    for run, eng in (
        ("max_batch_size", "engine_max_batch_size"),
        ("max_num_tokens", "engine_max_num_tokens"),
    ):
        if knobs[run] > knobs[eng]:
            return (
                f"{run}={knobs[run]} exceeds the engine's {eng}={knobs[eng]} (TensorRT-LLM would clamp it, "
                f"so the trial would repeat another); raise {eng}"
            )
    if knobs["max_input_len"] > knobs["max_seq_len"]:
        return f"max_input_len={knobs['max_input_len']} exceeds max_seq_len={knobs['max_seq_len']}"
    return None


def _memory(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext, options: TensorrtOptions
) -> str | None:
    """The estimate from config.json: weights, activations and runtime fit, and the KV pool holds a request."""
    est = memory_estimate(knobs, device, ctx, options) if ctx.model_config else None
    return memory_reason(est, knobs, device, ctx)


def infeasible_reason(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext | None, options: TensorrtOptions
) -> str | None:
    """Why this trial cannot run, decided before building: device, architecture, bounds, memory estimate."""
    ctx = ctx or FeasibilityContext()
    return (
        _device(knobs, device, ctx)
        or _kv_int8_chunking(knobs)
        or _bounds(knobs)
        or request_lengths(knobs, ctx)
        or _memory(knobs, device, ctx, options)
    )
