"""Figures of one trial (a serving trial's server timeline), for its MLflow run."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.plots._common import empty_figure


def server_timeline(bench: dict[str, Any]) -> go.Figure:
    """A serving trial over time: load (in flight, running, waiting), KV-cache usage, each request's latency."""
    cols, reqs = bench.get("server_metrics") or {}, bench.get("requests") or []
    if not cols.get("t"):
        return empty_figure("Server over time", "no server metrics: not a serving trial")
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("load (requests)", "KV-cache usage", "latency per request (ms)"),
    )
    for name in ("inflight", "running", "waiting"):
        if any(v is not None for v in cols.get(name) or []):
            fig.add_trace(go.Scatter(x=cols["t"], y=cols[name], name=name, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scatter(x=cols["t"], y=cols.get("kv_cache_usage"), name="kv_cache_usage"), row=2, col=1)
    done = [r for r in reqs if r.get("token_times_s")]
    x = [r["arrival_s"] for r in done]
    for name, k in (("TTFT", 0), ("E2E", -1)):
        y = [(r["token_times_s"][k] - r["arrival_s"]) * 1000 for r in done]
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="markers", marker={"size": 4}), row=3, col=1)
    fig.update_layout(title="Server over time (seconds since the first request)", height=700)
    fig.update_yaxes(range=[0, 1.05], row=2, col=1)
    return fig


def trial_figures(res: Any) -> dict[str, go.Figure]:
    """The figures of one trial's MLflow run (a serving trial's timeline; none for in-process trials)."""
    bench = getattr(res, "bench", None) or {}
    return {"server_timeline": server_timeline(bench)} if bench.get("server_metrics") else {}
