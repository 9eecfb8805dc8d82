"""The `hf` engine's knobs as transformers' ContinuousBatchingConfig: one pure translation.

The runner opens the engine with it and `workbench export` writes it, so a deployed configuration
is the one the trial measured. The KV-cache knob means two things by device:

- CUDA: `max_memory_percent` = kv_cache_fraction, the share of free device memory after the weights.
- CPU: `num_blocks` = kv_cache_fraction x trial.cpu_kv_budget_gb / bytes per block, because free RAM
  moves between runs and would make results irreproducible.
"""

from __future__ import annotations

from typing import Any

from workbench import estimate
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def cpu_num_blocks(fraction: float, budget_gb: float, kv_bytes_per_token: int, page_size: int) -> int:
    """KV blocks for a fraction of the CPU memory budget (at least one, so the engine can report the failure)."""
    return max(1, int(fraction * budget_gb * 1024**3 // (kv_bytes_per_token * page_size)))


def cb_config_args(
    knobs: dict[str, Any], device_kind: str, cpu_kv_budget_gb: float, kv_bytes_per_token: int | None
) -> dict[str, Any]:
    """ContinuousBatchingConfig keywords; on CPU `num_blocks` is None when bytes per token are unknown."""
    page = int(knobs["page_size"])
    args: dict[str, Any] = {
        "max_requests_per_batch": int(knobs[MAX_BATCH_SIZE]),
        "max_batch_tokens": int(knobs[MAX_NUM_TOKENS]),
        "page_size": page,
        "scheduler_type": knobs["scheduler"],
        "allow_block_sharing": bool(knobs["block_reuse"]),
        "use_cuda_graph": bool(knobs["cuda_graphs"]),
    }
    fraction = float(knobs[KV_CACHE_FRACTION])
    if device_kind == "cpu":
        args["num_blocks"] = (
            cpu_num_blocks(fraction, cpu_kv_budget_gb, kv_bytes_per_token, page)
            if kv_bytes_per_token
            else None
        )
    else:
        args["max_memory_percent"] = fraction
    return args


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
