"""The `hf` engine's deployable settings: `continuous_batching.yaml`, as the trial's runner used them.

The settings come from the same translation the runner opens the engine with (`config.py`), so on a
CPU trial the file holds `num_blocks` (kv_cache_fraction of trial.cpu_kv_budget_gb) and on a GPU
trial `max_memory_percent`, never the other one. Bytes per KV token come from the model's config.json
(a local folder, or the hub's local cache); without it a CPU export says so instead of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from workbench.engines.base import OpenContext
from workbench.engines.hf.config import cb_config_args, kv_bytes_per_token_of
from workbench.knobs import QUANTIZATION


def model_config(ctx: OpenContext) -> dict[str, Any]:
    """config.json of the model: its folder, else the hub cache (no network); {} when neither has it."""
    local = Path(ctx.model_source) / "config.json"
    path: Any = local if local.is_file() else None
    if path is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            path = try_to_load_from_cache(ctx.model_source, "config.json", revision=ctx.model_revision)
        except Exception:  # noqa: BLE001 - no hub client or not a hub id: the size stays unknown
            path = None
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text())


def settings(knobs: dict[str, Any], ctx: OpenContext) -> dict[str, Any]:
    """The model and ContinuousBatchingConfig keywords the runner would use for these knobs on ctx.device."""
    per_token = (
        kv_bytes_per_token_of(model_config(ctx), ctx.model_dtype) if ctx.device.kind == "cpu" else None
    )
    return {
        "model": ctx.model_source,
        "dtype": ctx.model_dtype,
        "device": ctx.device.kind,
        "attn_implementation": knobs.get("attn_implementation"),
        "quantization": knobs.get(QUANTIZATION),
        "continuous_batching_config": cb_config_args(knobs, ctx.device.kind, ctx.cpu_kv_budget_gb, per_token),
    }


def write_settings(knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
    head = f"# workbench study {ctx.study}: transformers continuous-batching settings (ContinuousBatchingConfig)\n"
    if ctx.device.kind == "cpu":
        head += (
            f"# measured on CPU: num_blocks = kv_cache_fraction x cpu_kv_budget_gb ({ctx.cpu_kv_budget_gb} GiB)"
            " / (KV bytes per token x page_size)\n"
        )
    p = out / "continuous_batching.yaml"
    p.write_text(head + yaml.safe_dump(settings(knobs, ctx), sort_keys=False))
    return [p]
