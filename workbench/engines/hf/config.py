"""The `hf` engine's knobs as transformers' ContinuousBatchingConfig: one pure translation.

The runner opens the engine with it and `workbench export` writes it, so a deployed configuration
is the one the trial measured. The KV-cache knob means two things by device:

- CUDA: `max_memory_percent` = kv_cache_fraction, the share of free device memory after the weights.
- CPU: `num_blocks` = kv_cache_fraction x trial.cpu_kv_budget_gb / bytes per block, because free RAM
  moves between runs and would make results irreproducible.

A knob at None ("auto") is left out, so transformers' own default applies (the engine's baseline); on
CPU an unset kv_cache_fraction is transformers' CPU default share (0.6) of the budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workbench import estimate
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

#: transformers' `max_memory_percent` on CPU when unset (continuous_batching/initialization.py,
#: resolve_max_memory_percent), applied to the CPU budget when kv_cache_fraction is auto
CPU_DEFAULT_MEMORY_PERCENT = 0.6


def cpu_num_blocks(fraction: float, budget_gb: float, kv_bytes_per_token: int, page_size: int) -> int:
    """KV blocks for a fraction of the CPU memory budget (at least one, so the engine can report the failure)."""
    return max(1, int(fraction * budget_gb * 1024**3 // (kv_bytes_per_token * page_size)))


def cb_config_args(
    knobs: dict[str, Any], device_kind: str, cpu_kv_budget_gb: float, kv_bytes_per_token: int | None
) -> dict[str, Any]:
    """ContinuousBatchingConfig keywords of the knobs that are set (auto ones are left to transformers);
    on CPU `num_blocks` is None when bytes per token are unknown."""
    page = int(knobs["page_size"])
    args: dict[str, Any] = {
        "page_size": page,
        "scheduler_type": knobs["scheduler"],
        "allow_block_sharing": bool(knobs["block_reuse"]),
    }
    for key, name, kind in (
        ("max_requests_per_batch", MAX_BATCH_SIZE, int),
        ("max_batch_tokens", MAX_NUM_TOKENS, int),
        ("use_cuda_graph", "cuda_graphs", bool),
    ):
        if knobs.get(name) is not None:
            args[key] = kind(knobs[name])
    mode = knobs.get("use_async_batching", "auto")
    if mode != "auto":
        args["use_async_batching"] = bool(mode)
    fraction = knobs.get(KV_CACHE_FRACTION)
    if device_kind == "cpu":
        share = CPU_DEFAULT_MEMORY_PERCENT if fraction is None else float(fraction)
        args["num_blocks"] = (
            cpu_num_blocks(share, cpu_kv_budget_gb, kv_bytes_per_token, page) if kv_bytes_per_token else None
        )
    elif fraction is not None:
        args["max_memory_percent"] = float(fraction)
    return args


def cb_config_kwargs(cls: Any, cb_args: dict[str, Any]) -> dict[str, Any]:
    """`ContinuousBatchingConfig` keywords for the installed transformers.

    transformers 5.17 (the GPU machine's) names the KV page `block_size`; 5.18 renamed it `page_size`
    and keeps `block_size` as a deprecated alias. Passing `page_size` to 5.17 failed the hf trial on
    the H200 on 2026-12-03 with an unexpected-keyword TypeError.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    if "page_size" in cb_args and "page_size" not in names and "block_size" in names:
        cb_args = {("block_size" if k == "page_size" else k): v for k, v in cb_args.items()}
    return cb_args


def dtype_bytes(model_dtype: str, model_config: dict[str, Any]) -> int:
    """Bytes per element of the compute dtype: the study's, or with "auto" the checkpoint's (float32 if unset)."""
    name = model_dtype
    if name == "auto":
        name = str(model_config.get("dtype") or model_config.get("torch_dtype") or "float32")
    return _DTYPE_BYTES.get(name.removeprefix("torch."), 4)


def kv_bytes_per_token_of(model_config: dict[str, Any], model_dtype: str) -> int | None:
    """K and V of every layer for one token, from config.json; None when the config lacks the shape."""
    try:
        return int(estimate.kv_bytes_per_token(model_config, dtype_bytes(model_dtype, model_config)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
