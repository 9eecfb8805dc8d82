"""Figures over many runs: several studies or strategies side by side (MLflow runs, replayed searches)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.plots._common import empty_figure


def strategy_comparison(runs: pd.DataFrame, key: str = "measurements") -> go.Figure:
    """Trials each search strategy needed to get near the best (one box per sampler, one dot per seed)."""
    fig = go.Figure()
    for sampler, g in runs.groupby("sampler", sort=False):
        ok = g[g.reached]
        fig.add_trace(go.Box(y=ok[key], name=f"{sampler} ({len(ok)}/{len(g)})", boxpoints="all", jitter=0.4))
    fig.update_layout(
        title=f"Search strategies on a recorded grid: {key} to reach the goal",
        yaxis_title=key,
        showlegend=False,
    )
    return fig


def compare_runs(
    runs: pd.DataFrame,
    x: str = "metrics.ttft_ms_p95",
    y: str = "metrics.output_tok_s",
    color: str = "tags.study",
    symbol: str | None = "params.quantization",
) -> go.Figure:
    """Trial runs from `mlflow.search_runs` (any studies, models, quantizations) on two metrics."""
    d = runs.dropna(subset=[c for c in (x, y) if c in runs])
    if d.empty or x not in d or y not in d:
        return empty_figure(f"{y} vs {x}", "no run has both metrics")
    fig = go.Figure()
    keys = d[color].astype(str) if color in d else pd.Series("runs", index=d.index)
    symbols = ["circle", "square", "diamond", "cross", "x", "triangle-up", "star", "hexagon"]
    sym_of = (
        {v: symbols[i % len(symbols)] for i, v in enumerate(sorted(d[symbol].astype(str).unique()))}
        if symbol and symbol in d
        else {}
    )
    for k, g in d.groupby(keys):
        fig.add_trace(
            go.Scatter(
                x=g[x],
                y=g[y],
                mode="markers",
                name=str(k),
                marker={
                    "size": 11,
                    "symbol": [sym_of.get(str(v), "circle") for v in g[symbol]] if sym_of else "circle",
                },
                text=[
                    f"{r.get('tags.mlflow.runName', '')}<br>{symbol}={r.get(symbol, '')}"
                    for _, r in g.iterrows()
                ],
                hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"{y.split('.', 1)[-1]} vs {x.split('.', 1)[-1]} across runs",
        xaxis_title=x,
        yaxis_title=y,
        legend_title=color,
    )
    return fig


def metric_by(
    runs: pd.DataFrame,
    metric: str = "metrics.output_tok_s",
    by: str = "params.quantization",
    color: str = "tags.study",
) -> go.Figure:
    """A metric's mean per group (e.g. per quantization), one bar per study."""
    d = runs.dropna(subset=[metric] if metric in runs else [])
    if d.empty or by not in d:
        return empty_figure(f"{metric} by {by}", "no run has it")
    keys = [by, color] if color in d else [by]
    agg = d.groupby(keys)[metric].agg(["mean", "std", "count"]).reset_index()
    fig = go.Figure()
    for k, g in agg.groupby(color) if color in agg else [("all", agg)]:
        fig.add_trace(
            go.Bar(
                x=g[by].astype(str),
                y=g["mean"],
                name=str(k),
                error_y={"type": "data", "array": g["std"].fillna(0)},
            )
        )
    fig.update_layout(
        barmode="group",
        title=f"{metric.split('.', 1)[-1]} by {by.split('.', 1)[-1]} (mean ± sd)",
        xaxis_title=by,
        yaxis_title=metric,
    )
    return fig
