"""A trial result as one MLflow batch: its metrics (and ratios to the baseline), engine params, tags.

Pure: it builds MLflow entities from a `TrialResult`; `MlflowTracker.log_result` sends them.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from workbench.metric_registry import shown_in

if TYPE_CHECKING:
    from workbench.trials.result import TrialResult

#: metrics also logged as `<name>_vs_baseline`, the trial's value over the baseline trial's
RATIO_METRICS = shown_in("vs_baseline")


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def result_batch(
    res: TrialResult, baseline: dict[str, float] | None, constraints: list[float], now: int
) -> tuple[list[Any], list[Any], list[Any]]:
    """(metrics, params, tags) of a trial's run."""
    from mlflow.entities import Param, RunTag

    params = [Param(f"engine.{k}", str(v)[:6000]) for k, v in res.engine_config.items()]
    tags = [RunTag(k, str(v)) for k, v in result_tags(res).items()]
    return result_metrics(res, baseline, constraints, now), params, tags


def result_tags(res: TrialResult) -> dict[str, str]:
    env = res.environment
    device = env.get("device", {})
    tags = {
        "status": res.status,
        "device": device.get("name", ""),
        "gpu": device.get("name", "") if device.get("kind") == "cuda" else "none",
        "git_commit": str(env.get("git", {}).get("commit")),
        "git_dirty": str(env.get("git", {}).get("dirty")),
        **{f"pkg.{k}": v for k, v in env.get("packages", {}).items()},
    }
    if res.build.get("build_key"):
        tags["build_key"] = res.build["build_key"]
        tags["build_cache_hit"] = str(res.build.get("cache_hit")).lower()
    if env.get("gpu"):
        tags["gpu_driver"] = str(env["gpu"].get("driver"))
    if res.failure:
        tags["failure_kind"] = res.failure.kind
        tags["failure"] = res.failure.message[:4000]
    return tags


def result_metrics(
    res: TrialResult, baseline: dict[str, float] | None, constraints: list[float], now: int
) -> list[Any]:
    from mlflow.entities import Metric

    metrics = [Metric(k, float(v), now, 0) for k, v in res.metrics.items() if finite(v)]
    if baseline and res.status == "COMPLETE":
        for k in RATIO_METRICS:
            if finite(res.metrics.get(k)) and finite(baseline.get(k)) and baseline[k]:
                metrics.append(Metric(f"{k}_vs_baseline", res.metrics[k] / baseline[k], now, 0))
    b = res.build or {}
    if b.get("size_bytes"):
        metrics.append(Metric("build.size_gb", b["size_bytes"] / 1024**3, now, 0))
    if b.get("build_key") and not b.get("cache_hit"):  # built by this trial: the time of each step
        for step, sec in (b.get("steps_s") or {}).items():
            if finite(sec):
                metrics.append(Metric(f"build.{slug(step)}_s", float(sec), now, 0))
    metrics += series_metrics(res.bench or {}, now)
    per_chunk = ((res.bench or {}).get("usage_check") or {}).get("tokens_per_chunk")
    if finite(per_chunk):  # a serving trial: 1 means its latencies are per token
        metrics.append(Metric("stream.tokens_per_chunk", float(per_chunk), now, 0))
    for i, c in enumerate(constraints):
        metrics.append(Metric(f"constraint_{i}", float(c), now, 0))  # <= 0 is feasible
    if constraints:
        metrics.append(Metric("feasible", float(all(c <= 0 for c in constraints)), now, 0))
    return metrics


def slug(name: str) -> str:
    """A build-step label ("Loading HF model to memory") as a metric-name part."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


#: server metrics (bench.server_metrics columns) logged as step series, as `server.<name>`
SERVER_SERIES = (
    "kv_cache_usage",
    "running",
    "waiting",
    "preemptions",
    "prefix_cache_queries",
    "prefix_cache_hits",
    "inflight",
)


def series_metrics(bench: dict[str, Any], now: int) -> list[Any]:
    """A serving trial's scraped server metrics and each request's latency as MLflow step series.

    The step is milliseconds since the first measured request's arrival (the time base of the report's
    `requests`), so every series of a run shares one x axis in MLflow's "Step" view; the timestamps
    follow the same offsets, for its relative-time view.
    """
    from mlflow.entities import Metric

    out: list[Any] = []
    cols = bench.get("server_metrics") or {}
    if not cols:  # in-process engines: their per-request times stay in the report, not in MLflow
        return out
    for name in SERVER_SERIES:
        for t, v in zip(cols.get("t", []), cols.get(name) or [], strict=False):
            if finite(v) and finite(t):
                ms = max(0, round(t * 1000))
                out.append(Metric(f"server.{name}", float(v), now + ms, ms))
    for r in bench.get("requests") or []:
        times = r.get("token_times_s") or []
        if times:
            ms = max(0, round(r["arrival_s"] * 1000))
            out.append(Metric("request.ttft_ms", (times[0] - r["arrival_s"]) * 1000, now + ms, ms))
            out.append(Metric("request.e2e_ms", (times[-1] - r["arrival_s"]) * 1000, now + ms, ms))
    return out
