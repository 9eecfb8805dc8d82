"""Server metrics while a trial runs: Prometheus text (vLLM, SGLang, our transformers launcher,
trtllm-serve's /prometheus/metrics) or trtllm-serve's JSON iteration stats, as one normalized sample.

A sample holds what the tuning figures need, each None when the server does not say it:
`kv_cache_usage` (0..1), `running` and `waiting` requests, `preemptions` (a counter), `prefix_cache_queries` and `prefix_cache_hits` (token counters). The parser is a
small one of our own (the worker's environment may lack prometheus_client): a sample line is
`name{labels} value [timestamp]`; labelled series of one name are summed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Prometheus names per normalized field, first match wins (sources: docs/serving.md)
PROMETHEUS_NAMES: dict[str, tuple[str, ...]] = {
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "sglang:token_usage",
        "trtllm_kv_cache_utilization",
        "workbench_kv_cache_usage",
    ),
    "running": (
        "vllm:num_requests_running",
        "sglang:num_running_reqs",
        "trtllm_num_requests_running",
        "workbench_requests_running",
    ),
    "waiting": (
        "vllm:num_requests_waiting",
        "sglang:num_queue_reqs",
        "trtllm_num_requests_waiting",
        "workbench_requests_waiting",
    ),
    "preemptions": (
        "vllm:num_preemptions_total",
        "vllm:num_preemptions",
        "sglang:num_retracted_requests_total",
        "workbench_preemptions_total",
    ),
    # counters of prompt tokens looked up in / found in the prefix cache (vLLM 0.26.0's v1 metrics)
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total",),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total",),
}
FIELDS = tuple(PROMETHEUS_NAMES)


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """{metric name: value summed over its label sets} of a Prometheus text exposition."""
    out: dict[str, float] = {}
    for raw in text.splitlines():
        m = _SAMPLE.match(raw.strip())
        if m is None:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if not math.isnan(value):
            out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def normalize_prometheus(values: dict[str, float]) -> dict[str, float | None]:
    sample: dict[str, float | None] = {}
    for field, names in PROMETHEUS_NAMES.items():
        sample[field] = next((values[n] for n in names if n in values), None)
    return sample


def normalize_trtllm_json(body: Any) -> dict[str, float | None]:
    """trtllm-serve's JSON /metrics: a list of iteration stats; the newest one is used."""
    stats = body[-1] if isinstance(body, list) and body else body if isinstance(body, dict) else None
    if not stats:
        return dict.fromkeys(FIELDS)
    kv = stats.get("kvCacheStats") or {}
    used, total = kv.get("usedNumBlocks"), kv.get("maxNumBlocks")
    ifb = stats.get("inflightBatchingStats") or {}
    return {
        "kv_cache_usage": (used / total) if used is not None and total else None,
        "running": stats.get("numActiveRequests"),
        "waiting": stats.get("numQueuedRequests"),
        "preemptions": ifb.get("numPausedRequests"),
        "prefix_cache_queries": None,
        "prefix_cache_hits": None,
    }


def normalize(body: bytes, fmt: str) -> dict[str, float | None]:
    """One sample from a /metrics body in `fmt` ("prometheus" or "trtllm-json")."""
    if fmt == "trtllm-json":
        try:
            return normalize_trtllm_json(json.loads(body or b"null"))
        except json.JSONDecodeError:
            return dict.fromkeys(FIELDS)
    return normalize_prometheus(parse_prometheus(body.decode(errors="replace")))
