"""Benchmark metrics as pure functions of recorded timestamps and token counts.

Names and definitions follow trtllm-bench's report where one exists, so users can hold our numbers
against trtllm-bench's: request throughput, system output/total throughput, per-user output
throughput, TTFT, TPOT, inter-token latency (ITL) and end-to-end latency, with the percentile keys
minimum/maximum/average/p50/p90/p95/p99. Times in the inputs are seconds; latencies out are ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from workbench.metric_registry import METRICS

PERCENTILE_KEYS = ("minimum", "maximum", "average", "p50", "p90", "p95", "p99")
_LATENCIES = ("ttft", "tpot", "itl", "e2e")
_STATS = ("mean", "p50", "p90", "p95", "p99")

#: flat metric names, as logged to Optuna and MLflow and usable in objectives and constraints
METRIC_NAMES: frozenset[str] = frozenset(METRICS)


class TimedRequest(Protocol):
    input_len: int
    arrival: float
    token_times: list[float]
    finish: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: Iterable[float]) -> dict[str, float]:
    """trtllm-bench's percentile block for a list of values."""
    v = sorted(values)
    if not v:
        return {k: math.nan for k in PERCENTILE_KEYS}
    return {
        "minimum": v[0],
        "maximum": v[-1],
        "average": sum(v) / len(v),
        "p50": percentile(v, 50),
        "p90": percentile(v, 90),
        "p95": percentile(v, 95),
        "p99": percentile(v, 99),
    }


def ttft_s(r: TimedRequest) -> float:
    return r.token_times[0] - r.arrival


def e2e_s(r: TimedRequest) -> float:
    return (r.token_times[-1] if r.token_times else r.finish) - r.arrival


def tpot_s(r: TimedRequest) -> float | None:
    """Time per output token after the first; undefined for one-token outputs."""
    n = len(r.token_times)
    return (r.token_times[-1] - r.token_times[0]) / (n - 1) if n > 1 else None


def itl_s(r: TimedRequest) -> list[float]:
    t = r.token_times
    return [b - a for a, b in zip(t, t[1:], strict=False)]


def summarize(records: Sequence[TimedRequest]) -> dict[str, Any]:
    """The performance, streaming_metrics and request_info blocks of a report."""
    if not records:
        raise ValueError("no finished requests to summarize")
    start = min(r.arrival for r in records)
    end = max(r.token_times[-1] if r.token_times else r.finish for r in records)
    duration = max(end - start, 1e-9)
    out_tokens = sum(len(r.token_times) for r in records)
    in_tokens = sum(r.input_len for r in records)
    e2e = [e2e_s(r) for r in records]
    ms = 1000.0
    with_tokens = [r for r in records if r.token_times]
    tpots = [t for t in (tpot_s(r) for r in with_tokens) if t is not None]
    gen_tps = [1.0 / t for t in tpots if t > 0]
    per_user = [len(r.token_times) / x for r, x in zip(records, e2e, strict=False) if x > 0]
    # average number of requests in flight over the run (Little's law on the measured window)
    avg_concurrency = sum(e2e) / duration
    return {
        "request_info": {
            "num_requests": len(records),
            "avg_num_concurrent_requests": avg_concurrency,
            "avg_input_length": in_tokens / len(records),
            "avg_output_length": out_tokens / len(records),
            "total_input_tokens": in_tokens,
            "total_output_tokens": out_tokens,
        },
        "performance": {
            "total_latency_ms": duration * ms,
            "avg_request_latency_ms": sum(e2e) / len(e2e) * ms,
            "request_throughput_req_s": len(records) / duration,
            "system_output_throughput_tok_s": out_tokens / duration,
            "system_total_throughput_tok_s": (out_tokens + in_tokens) / duration,
            "output_throughput_per_user_tok_s": sum(per_user) / len(per_user) if per_user else math.nan,
            "request_latency_percentiles_ms": distribution(x * ms for x in e2e),
        },
        "streaming_metrics": {
            "avg_ttft_ms": _mean([ttft_s(r) * ms for r in with_tokens]),
            "avg_tpot_ms": _mean([t * ms for t in tpots]),
            "ttft_percentiles": distribution(ttft_s(r) * ms for r in with_tokens),
            "tpot_percentiles": distribution(t * ms for t in tpots),
            "itl_percentiles": distribution(x * ms for r in with_tokens for x in itl_s(r)),
            "gen_tps_percentiles": distribution(gen_tps),
        },
    }


def _mean(v: Sequence[float]) -> float:
    return sum(v) / len(v) if v else math.nan


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The flat names (output_tok_s, ttft_ms_p95, ...) from a report's blocks."""
    perf, stream = report["performance"], report["streaming_metrics"]
    out = {
        "output_tok_s": perf["system_output_throughput_tok_s"],
        "total_tok_s": perf["system_total_throughput_tok_s"],
        "request_per_s": perf["request_throughput_req_s"],
        "per_user_output_tok_s": perf["output_throughput_per_user_tok_s"],
        "duration_s": perf["total_latency_ms"] / 1000.0,
    }
    blocks = {
        "ttft": stream["ttft_percentiles"],
        "tpot": stream["tpot_percentiles"],
        "itl": stream["itl_percentiles"],
        "e2e": perf["request_latency_percentiles_ms"],
    }
    for name, block in blocks.items():
        out[f"{name}_ms_mean"] = block["average"]
        for p in ("p50", "p90", "p95", "p99"):
            out[f"{name}_ms_{p}"] = block[p]
    return out


def repeat_summary(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation and coefficient of variation of each metric over repeated runs."""
    out: dict[str, dict[str, float]] = {}
    for key in runs[0]:
        vals = [r[key] for r in runs if key in r and not math.isnan(r[key])]
        if not vals:
            continue
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out[key] = {"mean": mean, "std": sd, "cv": sd / mean if mean else math.nan, "n": len(vals)}
    return out


def meets_slo(r: TimedRequest, ttft_ms: float, tpot_ms: float) -> bool:
    """Whether one request met both targets (a one-token answer has no TPOT and meets that target)."""
    if not r.token_times:
        return False
    tpot = tpot_s(r)
    return ttft_s(r) * 1000.0 <= ttft_ms and (tpot is None or tpot * 1000.0 <= tpot_ms)


def goodput(
    records: Sequence[TimedRequest], failed: int, duration_s: float, ttft_ms: float, tpot_ms: float
) -> dict[str, float]:
    """Requests/s and output tokens/s of the requests meeting both targets, over the run's duration;
    `failed` requests (errors, timeouts) count in the fraction's denominator and never as good."""
    good = [r for r in records if meets_slo(r, ttft_ms, tpot_ms)]
    total = len(records) + failed
    d = max(duration_s, 1e-9)
    return {
        "goodput_request_per_s": len(good) / d,
        "goodput_output_tok_s": sum(len(r.token_times) for r in good) / d,
        "goodput_fraction": len(good) / total if total else math.nan,
    }


def load_meets(point: dict[str, float], ttft_ms: float, tpot_ms: float) -> bool:
    """Whether one measured load (a sweep point, a search probe) meets the targets: p95 TTFT and TPOT
    within them (no TPOT: one-token answers) and no request failed."""
    tpot = point["tpot_ms_p95"]
    return (
        point["ttft_ms_p95"] <= ttft_ms
        and (math.isnan(tpot) or tpot <= tpot_ms)
        and not point.get("error_rate")
    )


def highest_load_meeting(
    points: Sequence[dict[str, float]], ttft_ms: float, tpot_ms: float
) -> dict[str, float]:
    """Of sweep points ({load, ttft_ms_p95, tpot_ms_p95, error_rate, ...} in load order), the highest
    load whose p95 TTFT and TPOT meet the targets without errors, with its throughput. When no load meets
    them all three are 0: nothing is served within the targets, which is a result to rank (the worst), not a
    missing value, so an SLO objective scores such a configuration instead of failing its trial."""
    ok = [p for p in points if load_meets(p, ttft_ms, tpot_ms)]
    best = max(ok, key=lambda p: p["load"]) if ok else None
    return {
        "slo_max_load": best["load"] if best else 0.0,
        "slo_max_load_request_per_s": best["request_per_s"] if best else 0.0,
        "slo_max_load_output_tok_s": best["output_tok_s"] if best else 0.0,
    }
