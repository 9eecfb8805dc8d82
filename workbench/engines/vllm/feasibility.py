"""Which `vllm` trials cannot run, decided before any work from the knobs, the GPU and config.json.

Every rule is one vLLM 0.26.0 itself enforces at start (it would raise after imports, a minute in) or a
format it does not serve on the GPU's architecture; the facts (minimum compute capability of each
quantization method, the ModelOpt algorithms it loads) are the recorded ones in `api/`.
"""

from __future__ import annotations

from typing import Any

import workbench.engines.vllm.api as api
from workbench import estimate
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.engines.trtllm.modelopt_build import EXPORTED_ALGO as MODELOPT_EXPORTS
from workbench.engines.vllm.args import MODELOPT_METHOD
from workbench.engines.vllm.knobs import MODELOPT, WEIGHT_FORMAT, VllmOptions
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION

#: what a study's ModelOpt choice writes as quant_algo in its checkpoint
EXPORTED_ALGO = {choice: MODELOPT_EXPORTS[algorithm] for choice, algorithm in MODELOPT.items()}
#: CUDA context, torch.compile and CUDA-graph pools, sampler buffers: below this, no KV cache is left
RESERVE_BYTES = 3 * 1024**3


def infeasible_reason(knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext) -> str | None:
    return (
        _device(device, VllmOptions() if ctx.options is None else ctx.options)
        or _quantization(knobs, device)
        or _scheduler(knobs, ctx)
        or _memory(knobs, device, ctx)
    )


def _device(device: DeviceInfo, options: VllmOptions) -> str | None:
    target = options.target_device
    if device.kind != target:
        return (
            f"vllm built for {target} cannot run on {device.kind}: vLLM 0.26.0's wheel is built for CUDA 13.0 "
            "and needs an NVIDIA GPU (engine_options.target_device: cpu for a CPU build of vLLM)"
        )
    return None


def _quantization(knobs: dict[str, Any], device: DeviceInfo) -> str | None:
    """A quantization the recorded vLLM cannot load, or not on this GPU's architecture."""
    q = knobs.get(QUANTIZATION, "none")
    if q == "none":
        return None
    snap = api.snapshot()
    method = MODELOPT_METHOD.get(q, q)
    if method not in snap["quantization_methods"]:
        return f"quantization={q}: vLLM {snap['vllm_version']} has no quantization method {method!r}"
    if q in MODELOPT:
        algos = api.modelopt_algos(method, snap)
        if EXPORTED_ALGO[q] not in algos:
            return (
                f"quantization={q}: vLLM {snap['vllm_version']}'s {method!r} loader takes quant_algo "
                f"{', '.join(algos) or 'none'}, not {EXPORTED_ALGO[q]} (recorded from its source)"
            )
    need = snap.get("quantization_min_capability", {}).get(method)
    have = device.compute_capability
    if device.kind != "cuda":
        return f"quantization={q} needs a GPU in vLLM {snap['vllm_version']}"
    if need and have and have[0] * 10 + have[1] < int(need):
        return (
            f"quantization={q} needs compute capability {int(need) // 10}.{int(need) % 10} in vLLM "
            f"{snap['vllm_version']} ({method}); {device.name} has {have[0]}.{have[1]}"
        )
    return None


def _scheduler(knobs: dict[str, Any], ctx: FeasibilityContext) -> str | None:
    """The scheduler checks vLLM makes at start (vllm/config/scheduler.py), where both values are known."""
    seqs, tokens = knobs.get(MAX_BATCH_SIZE), knobs.get(MAX_NUM_TOKENS)
    if seqs is not None and tokens is not None and tokens < seqs:
        return (
            f"max_num_tokens={tokens} < max_batch_size={seqs}: vLLM requires max_num_batched_tokens >= "
            "max_num_seqs (every scheduled sequence needs a token of the budget)"
        )
    longest = (ctx.longest_prompt or 0) + (ctx.longest_output or 0)
    max_len = knobs.get("max_model_len")
    if max_len is not None and longest and longest > max_len:
        return f"max_model_len={max_len} is shorter than the workload's longest request ({longest} tokens)"
    if knobs.get("enable_chunked_prefill") is False and tokens is not None:
        text = ctx.model_config.get("text_config") or ctx.model_config
        limit = max_len or int(text.get("max_position_embeddings") or 0)
        if limit and tokens < limit:
            return (
                f"enable_chunked_prefill=false needs max_num_tokens >= max_model_len ({limit}): without chunks "
                f"vLLM must fit a whole prompt in one step's budget ({tokens})"
            )
    return None


def _memory(knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext) -> str | None:
    """gpu_memory_utilization too small to hold the weights and vLLM's own buffers (an estimate)."""
    fraction = knobs.get(KV_CACHE_FRACTION)
    if fraction is None or not ctx.model_config or device.kind != "cuda":
        return None
    try:
        weights = estimate.weight_bytes(ctx.model_config, WEIGHT_FORMAT[knobs.get(QUANTIZATION, "none")])
    except (KeyError, TypeError, ValueError):
        return None
    budget = float(fraction) * device.total_memory_bytes
    if weights + RESERVE_BYTES > budget:
        return (
            f"kv_cache_fraction={fraction} (gpu_memory_utilization) gives vLLM {budget / 1e9:.1f} GB of "
            f"{device.total_memory_bytes / 1e9:.1f} GB, less than the weights ({weights / 1e9:.1f} GB, "
            f"estimated) and {RESERVE_BYTES / 1e9:.1f} GB for its buffers: no KV cache would be left"
        )
    return None
