"""What a vLLM engine resolved its automatic settings to, read back from what it exposes.

A server: the `vllm:cache_config_info` Prometheus series carries the resolved `CacheConfig` as labels
(`block_size`, `num_gpu_blocks`, `kv_cache_size_tokens`, `gpu_memory_utilization`, `cache_dtype`,
`enable_prefix_caching`), so the KV-cache capacity comes from a structured source. No series carries the
scheduler's values; `/server_info?config_format=json` does (the whole VllmConfig), only with
`VLLM_SERVER_DEV_MODE=1`, which the engine sets for its own server on 127.0.0.1. The startup log's own
lines (`log_lines` in the recorded facts) are the last fallback, marked `*_source: log`.
In-process: everything comes from the engine's `VllmConfig` (`from_config`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from workbench import estimate
from workbench.engines.vllm.knobs import WEIGHT_FORMAT

_INFO = re.compile(r"^vllm:cache_config_info\{(.*)\}\s+\S+", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
#: CacheConfig labels worth recording, as result keys
CACHE_LABELS = {
    "block_size": int,
    "num_gpu_blocks": int,
    "kv_cache_size_tokens": int,
    "kv_cache_max_concurrency": float,
    "gpu_memory_utilization": float,
    "cache_dtype": str,
    "enable_prefix_caching": str,
}
#: startup-log lines of vLLM 0.26.0 (vllm/v1/core/kv_cache_utils.py, vllm/config/scheduler.py)
LOG_PATTERNS = {
    "kv_cache_tokens": re.compile(r"GPU KV cache size: ([\d,]+) tokens"),
    "max_num_batched_tokens": re.compile(r"max_num_batched_tokens=(\d+)"),
    "max_num_seqs": re.compile(r"max_num_seqs=(\d+)"),
}


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text.replace(",", ""))
    except ValueError:
        return None


def from_metrics(text: str) -> dict[str, Any]:
    """The resolved cache configuration from a /metrics body ({} when vLLM does not expose it)."""
    m = _INFO.search(text)
    if m is None:
        return {}
    labels = dict(_LABEL.findall(m.group(1)))
    out: dict[str, Any] = {}
    for key, kind in CACHE_LABELS.items():
        if labels.get(key) not in (None, "", "None"):
            out[key] = _number(labels[key], kind) if kind is not str else labels[key]
    if out.get("kv_cache_size_tokens"):
        out["kv_cache_tokens"] = int(out["kv_cache_size_tokens"])
        out["kv_cache_tokens_source"] = "metrics: vllm:cache_config_info kv_cache_size_tokens"
    elif out.get("num_gpu_blocks") and out.get("block_size"):
        out["kv_cache_tokens"] = int(out["num_gpu_blocks"]) * int(out["block_size"])
        out["kv_cache_tokens_source"] = "metrics: vllm:cache_config_info num_gpu_blocks x block_size"
    return out


def from_server_info(body: Any) -> dict[str, Any]:
    """The scheduler's resolved values from /server_info?config_format=json (VLLM_SERVER_DEV_MODE=1)."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            sched = node.get("scheduler_config")
            if isinstance(sched, dict):
                for key in (
                    "max_num_seqs",
                    "max_num_batched_tokens",
                    "enable_chunked_prefill",
                    "async_scheduling",
                ):
                    if sched.get(key) is not None:
                        found.setdefault(key, sched[key])
            for v in node.values():
                walk(v)

    walk(body)
    return {**found, **({"scheduler_source": "server_info"} if found else {})}


def from_log(path: Path) -> dict[str, Any]:
    """Values only the startup log states (the last occurrence wins), each with `<key>_source: log`."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    out: dict[str, Any] = {}
    for key, pat in LOG_PATTERNS.items():
        found = pat.findall(text)
        if found:
            out[key] = _number(found[-1], int)
            out[f"{key}_source"] = "log"
    return out


def from_config(cfg: Any) -> dict[str, Any]:
    """Everything resolved, from an in-process engine's `VllmConfig`."""
    cache, sched, model = cfg.cache_config, cfg.scheduler_config, cfg.model_config
    out = {
        "block_size": cache.block_size,
        "num_gpu_blocks": cache.num_gpu_blocks,
        "kv_cache_max_concurrency": getattr(cache, "kv_cache_max_concurrency", None),
        "gpu_memory_utilization": cache.gpu_memory_utilization,
        "cache_dtype": str(cache.cache_dtype),
        "enable_prefix_caching": cache.enable_prefix_caching,
        "max_num_seqs": sched.max_num_seqs,
        "max_num_batched_tokens": sched.max_num_batched_tokens,
        "max_model_len": model.max_model_len,
    }
    tokens = getattr(cache, "kv_cache_size_tokens", None)
    if tokens:
        out["kv_cache_tokens"] = int(tokens)
    elif cache.num_gpu_blocks and cache.block_size:
        out["kv_cache_tokens"] = int(cache.num_gpu_blocks) * int(cache.block_size)
    return {k: v for k, v in out.items() if v is not None}


def kv_bytes_per_token(model_source: str, kv_cache_dtype: str | None) -> int | None:
    """Bytes one token of KV cache takes over all layers (config.json; 1 byte a value for fp8)."""
    try:
        cfg = estimate.read_config(model_source)
        return estimate.kv_bytes_per_token(cfg, 1.0 if str(kv_cache_dtype or "").startswith("fp8") else 2.0)
    except (OSError, KeyError, TypeError, ValueError):
        return None


def weights_bytes(model_source: str, quantization: str | None) -> int | None:
    """The weights' size at their quantized format, an ESTIMATE from config.json (vLLM exposes no
    structured figure; its log's "Model loading took" line is per worker): `weights_bytes_source`."""
    try:
        return estimate.weight_bytes(
            estimate.read_config(model_source), WEIGHT_FORMAT[quantization or "none"]
        )
    except (OSError, KeyError, TypeError, ValueError):
        return None


def model_dtype(model_source: str) -> str | None:
    """The checkpoint's own dtype (config.json), which `--dtype auto` serves."""
    cfg = estimate.read_config(model_source)
    return cfg.get("torch_dtype") or cfg.get("dtype") or (cfg.get("text_config") or {}).get("torch_dtype")
