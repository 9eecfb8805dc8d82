"""Whether a PyTorch-backend trtllm trial can run, decided before any build or load.

The device and architecture each quantization needs (FP8 and FP8 KV: Ada/Hopper or newer; NVFP4:
Blackwell), the CUDA-graph batch within
the runtime batch, the request lengths (shared with trtllm-tensorrt), and a memory estimate:
weights + activations of the token budget + buffers that grow with max_batch_size (fp32 logits of a
full batch, the CUDA graphs' static buffers) + two CUDA contexts (the caller's and the executor's).
"""

from __future__ import annotations

from typing import Any

from workbench import estimate
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.engines.trtllm.knobs import (
    DRAFT_MODEL_MODES,
    HOPPER_FP8,
    TORCH_QUANTIZATIONS,
    TORCH_REFUSED,
    TrtllmOptions,
)

#: one CUDA context (driver, cuBLAS/cuDNN workspaces, NCCL off) per process; the LLM API has two
CUDA_CONTEXT_BYTES = 0.6 * estimate.GiB
#: the PyTorch backend's own runtime overhead besides the contexts (allocator slack, sampler, kernels)
RUNTIME_BYTES = 1.0 * estimate.GiB


#: what each minimum compute capability of a quantization is called in a reason
ARCHITECTURES = {
    (8, 9): "Ada or Hopper (compute capability >= 8.9)",
    (10, 0): "Blackwell (compute capability >= 10.0)",
}


def _device(knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext) -> str | None:
    if device.kind != "cuda":
        return "the trtllm engine needs an NVIDIA GPU; this trial's device is the CPU (use engine: hf there)"
    q = knobs["quantization"]
    if q in TORCH_REFUSED:
        return TORCH_REFUSED[q]
    cc = device.compute_capability or (0, 0)
    need = TORCH_QUANTIZATIONS[q].min_cc
    if knobs["kv_cache_dtype"] == "fp8":
        need = max(need, HOPPER_FP8)
    if cc < need:
        arch = ARCHITECTURES.get(need, f"compute capability >= {need[0]}.{need[1]}")
        return f"quantization {q} with kv_cache_dtype {knobs['kv_cache_dtype']} needs {arch}; {device.name} has {cc[0]}.{cc[1]}"
    if ctx.model_dtype == "bfloat16" and cc < (8, 0):
        return f"bfloat16 needs compute capability >= 8.0; {device.name} has {cc[0]}.{cc[1]}"
    return None


def _bounds(knobs: dict[str, Any]) -> str | None:
    if knobs["cuda_graphs"] and knobs["cuda_graph_max_batch_size"] > knobs["max_batch_size"]:
        return (
            f"cuda_graph_max_batch_size={knobs['cuda_graph_max_batch_size']} exceeds max_batch_size="
            f"{knobs['max_batch_size']}: graphs above the runtime batch are never used (the trial would repeat another)"
        )
    if not knobs["cuda_graphs"] and knobs.get("cuda_graph_batch_sizes", "auto") != "auto":
        return "cuda_graph_batch_sizes without cuda_graphs changes nothing (the trial would repeat another)"
    if knobs["max_input_len"] > knobs["max_seq_len"]:
        return f"max_input_len={knobs['max_input_len']} exceeds max_seq_len={knobs['max_seq_len']}"
    return None


def _speculative(knobs: dict[str, Any], ctx: FeasibilityContext, options: TrtllmOptions) -> str | None:
    """What 1.2.1's speculative configs require (llm_args.py raises otherwise), and no draft knob set
    without its mode (the trial would repeat another)."""
    mode = knobs.get("speculative_decoding", "none")
    draft, ngram = knobs.get("max_draft_len"), knobs.get("max_matching_ngram_size")
    if mode == "none":
        set_ = [k for k, v in (("max_draft_len", draft), ("max_matching_ngram_size", ngram)) if v is not None]
        return f"{', '.join(set_)} without speculative_decoding changes nothing" if set_ else None
    if ngram is not None and mode != "ngram":
        return f"max_matching_ngram_size is an ngram knob; speculative_decoding is {mode}"
    if mode in DRAFT_MODEL_MODES and not options.speculative_model:
        return f"speculative_decoding {mode} needs a draft model: set engine_options.speculative_model"
    if mode in ("eagle3", "ngram", "draft_target") and draft is None:
        return f"speculative_decoding {mode} needs max_draft_len (TensorRT-LLM 1.2.1 requires it > 0)"
    if mode == "ngram" and ngram is None:
        return "speculative_decoding ngram needs max_matching_ngram_size (TensorRT-LLM 1.2.1 requires it > 0)"
    layers = (ctx.model_config or {}).get("num_nextn_predict_layers")
    if mode == "mtp" and ctx.model_config and not layers:  # an empty config: not known, not refused
        return (
            "speculative_decoding mtp drafts with the checkpoint's own MTP layers, and this model's "
            "config.json has none (num_nextn_predict_layers, as in DeepSeek-V3)"
        )
    return None


def memory_estimate(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext, options: TrtllmOptions
) -> dict[str, float] | None:
    """Weights, activations, max-batch buffers, contexts and the KV pool (bytes, tokens) from config.json."""
    cfg = ctx.model_config
    try:
        q = TORCH_QUANTIZATIONS[knobs["quantization"]]
        dbytes = 4.0 if ctx.model_dtype == "float32" else 2.0
        total = device.total_memory_bytes * options.tensor_parallel_size
        weights = estimate.weight_bytes(cfg, q.weight_format, dbytes)
        act = estimate.activation_bytes(cfg, int(knobs["max_num_tokens"]), dbytes)
        per_token = estimate.kv_bytes_per_token(cfg, 1.0 if knobs["kv_cache_dtype"] == "fp8" else dbytes)
        batch = int(knobs["max_batch_size"])
        logits = batch * int(cfg["vocab_size"]) * 4.0  # fp32 logits of a full decode batch
        graphs = (
            int(knobs["cuda_graph_max_batch_size"]) * int(cfg["hidden_size"]) * dbytes * 8
            if knobs["cuda_graphs"]
            else 0.0
        )
    except (KeyError, TypeError, ValueError):
        return None
    overhead = 2 * CUDA_CONTEXT_BYTES + RUNTIME_BYTES
    free_after = total - weights - act - logits - graphs - overhead
    pool = max(free_after, 0) * float(knobs["kv_cache_fraction"])
    return {
        "total_bytes": float(total),
        "weights_bytes": float(weights),
        "activation_bytes": float(act),
        "max_batch_buffers_bytes": float(logits + graphs),
        "overhead_bytes": float(overhead),
        "free_after_engine_bytes": float(free_after),
        "kv_pool_bytes": float(pool),
        "kv_bytes_per_token": float(per_token),
        "kv_pool_tokens": float(pool // per_token) if per_token else 0.0,
    }


def _request(knobs: dict[str, Any], what: str, prompt: int, out: int | None, workload: bool) -> str | None:
    """One request's lengths against the engine's input, sequence and (without chunking) token caps."""
    if prompt > knobs["max_input_len"]:
        return f"{what} has a {prompt}-token prompt, over the engine's max_input_len={knobs['max_input_len']}"
    if out is not None and prompt + out > knobs["max_seq_len"]:
        return f"{what} needs {prompt}+{out} tokens, over the engine's max_seq_len={knobs['max_seq_len']}"
    # GSM8K prompts (~1000 tokens 5-shot) are bounded, not sized, by accuracy.max_input_len
    if workload and not knobs["chunked_prefill"] and prompt > knobs["max_num_tokens"]:
        return (
            f"{what} has a {prompt}-token prompt, over max_num_tokens={knobs['max_num_tokens']} "
            "with chunked_prefill off (turn it on or raise max_num_tokens)"
        )
    return None


def request_lengths(knobs: dict[str, Any], ctx: FeasibilityContext) -> str | None:
    if ctx.longest_prompt is not None:
        why = _request(knobs, "the workload's longest request", ctx.longest_prompt, ctx.longest_output, True)
        if why:
            return why
    if ctx.accuracy_input_len is not None:
        what = "a GSM8K request (accuracy.max_input_len + max_gen_toks)"
        return _request(knobs, what, ctx.accuracy_input_len, ctx.accuracy_gen_len, False)
    return None


def _memory(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext, options: TrtllmOptions
) -> str | None:
    est = memory_estimate(knobs, device, ctx, options) if ctx.model_config else None
    return memory_reason(est, knobs, device, ctx)


def memory_reason(
    est: dict[str, float] | None, knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext
) -> str | None:
    """Why a memory estimate (either backend's) says the trial cannot fit, or None."""
    if est is None:
        return None
    g = estimate.GiB
    if est["free_after_engine_bytes"] <= 0:
        return (
            f"estimated not to fit: weights {est['weights_bytes'] / g:.1f} GiB + activations "
            f"{est['activation_bytes'] / g:.1f} GiB + max-batch buffers {est['max_batch_buffers_bytes'] / g:.1f} GiB "
            f"+ runtime {est['overhead_bytes'] / g:.1f} GiB exceed "
            f"the {est['total_bytes'] / g:.1f} GiB of {device.name} (an estimate from config.json)"
        )
    pairs = ((ctx.longest_prompt, ctx.longest_output), (ctx.accuracy_input_len, ctx.accuracy_gen_len))
    need = max((p or 0) + (o or 0) for p, o in pairs)
    if need and est["kv_pool_tokens"] < need:
        return (
            f"estimated not to fit: the KV pool of about {est['kv_pool_tokens']:.0f} tokens "
            f"(kv_cache_fraction={knobs['kv_cache_fraction']} of {est['free_after_engine_bytes'] / g:.1f} GiB) "
            f"cannot hold one {need}-token request (an estimate from config.json)"
        )
    return None


def infeasible_reason(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext | None, options: TrtllmOptions
) -> str | None:
    """Why this PyTorch-backend trial cannot run: device, architecture, knob bounds, lengths, memory."""
    ctx = ctx or FeasibilityContext()
    return (
        _device(knobs, device, ctx)
        or _bounds(knobs)
        or _speculative(knobs, ctx, options)
        or request_lengths(knobs, ctx)
        or _memory(knobs, device, ctx, options)
    )
