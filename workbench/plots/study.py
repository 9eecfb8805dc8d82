"""Figures of one study: its trials table (`workbench.study.trials_frame`) or the Optuna study.

Optuna's own plotly figures are reused where they exist (importances, parallel coordinates).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.plots._common import colour_map, complete_trials, empty_figure
from workbench.study import trials_frame


def pareto_mask(values: list[tuple[float, ...]], maximize: tuple[bool, ...]) -> list[bool]:
    """Which points no other point dominates: Optuna's own Pareto front over the points as trials."""
    import optuna

    if not values:
        return []
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "a new study created in memory" line
    try:
        study = optuna.create_study(directions=["maximize" if m else "minimize" for m in maximize])
    finally:
        optuna.logging.set_verbosity(level)
    study.add_trials([optuna.trial.create_trial(values=list(map(float, v))) for v in values])
    front = {t.number for t in study.best_trials}
    return [i in front for i in range(len(values))]


def pareto_front(
    df: pd.DataFrame,
    x: str = "output_tok_s",
    y: str = "gsm8k_score",
    size: str = "peak_memory_gb",
    color: str = "quantization",
    y_maximize: bool = True,
) -> go.Figure:
    """Throughput against accuracy, marker size = memory, colour = quantization; the front is joined."""
    d = complete_trials(df)
    title = f"Pareto front: {x} vs {y} (size: {size})"
    if d.empty or x not in d or y not in d or d[[x, y]].dropna().empty:
        return empty_figure(title, f"no completed trial has both {x} and {y} yet")
    d = d.dropna(subset=[x, y])
    colours = colour_map(list(d[color])) if color in d else {}
    mem = d[size] if size in d else pd.Series(1.0, index=d.index)
    scale = 40 / max(float(mem.max()), 1e-9)
    fig = go.Figure()
    for q, g in d.groupby(d[color].astype(str) if color in d else pd.Series("all", index=d.index)):
        fig.add_trace(
            go.Scatter(
                x=g[x],
                y=g[y],
                mode="markers",
                name=f"{color}={q}",
                marker={
                    "size": [max(8.0, float(m) * scale) for m in mem.loc[g.index]],
                    "color": colours.get(q),
                    "line": {"width": 1, "color": "white"},
                    "opacity": 0.85,
                },
                text=[
                    f"trial {n}<br>{size}={m:.3g}" for n, m in zip(g["number"], mem.loc[g.index], strict=True)
                ],
                hovertemplate="%{text}<br>" + x + "=%{x:.4g}<br>" + y + "=%{y:.4g}<extra></extra>",
            )
        )
    pts = list(zip(d[x].astype(float), d[y].astype(float), strict=True))
    front = d[pareto_mask(pts, (True, y_maximize))].sort_values(x)
    fig.add_trace(
        go.Scatter(
            x=front[x], y=front[y], mode="lines", name="Pareto front", line={"dash": "dot", "color": "black"}
        )
    )
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, legend_title=color)
    return fig


def optimization_history(
    df: pd.DataFrame, metric: str = "output_tok_s", direction: str = "maximize"
) -> go.Figure:
    """Each trial's value, the best so far, and the baseline drawn across."""
    d = complete_trials(df)
    title = f"Optimization history: {metric}"
    if d.empty or metric not in d or d[metric].dropna().empty:
        return empty_figure(title, f"no completed trial has {metric} yet")
    d = d.dropna(subset=[metric]).sort_values("number")
    best = d[metric].cummax() if direction == "maximize" else d[metric].cummin()
    fig = go.Figure(
        [
            go.Scatter(x=d["number"], y=d[metric], mode="markers", name=metric),
            go.Scatter(x=d["number"], y=best, mode="lines", name="best so far", line={"shape": "hv"}),
        ]
    )
    base = d[d["baseline"]] if "baseline" in d else d.iloc[0:0]
    if not base.empty:
        v = float(base[metric].iloc[0])
        fig.add_hline(y=v, line_dash="dash", line_color="grey", annotation_text=f"baseline {v:.4g}")
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title=metric)
    return fig


def param_importances(study: Any, metric_index: int = 0) -> go.Figure:
    """Optuna's fANOVA importances for one objective (needs a few completed trials)."""
    import optuna

    name = (study.user_attrs.get("objectives") or ["objective"])[metric_index]
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2 or not any(len(t.distributions) for t in done):
        return empty_figure(f"Parameter importances for {name}", "needs at least two completed trials")
    import warnings

    try:
        with warnings.catch_warnings():  # Optuna warns when few trials make the estimate rough
            warnings.simplefilter("ignore")
            fig = optuna.visualization.plot_param_importances(
                study, target=lambda t: t.values[metric_index], target_name=name
            )
    except (RuntimeError, ValueError) as e:  # e.g. every trial used the same values
        return empty_figure(f"Parameter importances for {name}", str(e))
    fig.update_layout(title=f"Parameter importances for {name}")
    return fig


def parallel_coordinates(study: Any, metric_index: int = 0) -> go.Figure:
    import optuna

    name = (study.user_attrs.get("objectives") or ["objective"])[metric_index]
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return empty_figure("Parallel coordinates", "no completed trial yet")
    fig = optuna.visualization.plot_parallel_coordinate(
        study, target=lambda t: t.values[metric_index], target_name=name
    )
    fig.update_layout(title=f"Parallel coordinates ({name})")
    return fig


def latency_curves(df: pd.DataFrame, load: str = "max_batch_size", color: str = "quantization") -> go.Figure:
    """TTFT and TPOT percentiles against load (a knob such as max_batch_size), one line per quantization."""
    d = complete_trials(df)
    title = f"Latency against load ({load})"
    if d.empty or load not in d:
        return empty_figure(title, f"no completed trial has {load}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (ms)", "TPOT (ms)"))
    groups = d.groupby(d[color].astype(str)) if color in d else [("all", d)]
    dashes = {"p50": "solid", "p95": "dash", "p99": "dot"}
    colours = colour_map(list(d[color])) if color in d else {}
    for q, g in groups:
        g = g.sort_values(load)
        for col, m in ((1, "ttft"), (2, "tpot")):
            for p, dash in dashes.items():
                c = f"{m}_ms_{p}"
                if c not in g:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=g[load],
                        y=g[c],
                        mode="lines+markers",
                        name=f"{q} {m} {p}",
                        legendgroup=str(q),
                        line={"dash": dash, "color": colours.get(q)},
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text=load, type="log" if d[load].min() > 0 else "linear")
    fig.update_layout(title=title)
    return fig


def memory_breakdown(df: pd.DataFrame) -> go.Figure:
    """Per trial: weights, KV cache and the rest of the measured peak (GB)."""
    d = complete_trials(df)
    if d.empty or "peak_memory_gb" not in d:
        return empty_figure("Memory per trial", "no completed trial has peak_memory_gb")
    d = d.sort_values("number")
    weights = d.get("weights_gb", pd.Series(0.0, index=d.index)).fillna(0.0)
    kv = d.get("kv_cache_gb", pd.Series(0.0, index=d.index)).fillna(0.0)
    other = (d["peak_memory_gb"] - weights - kv).clip(lower=0.0)
    x = [f"#{n}" for n in d["number"]]
    fig = go.Figure(
        [
            go.Bar(x=x, y=weights, name="weights"),
            go.Bar(x=x, y=kv, name="KV cache"),
            go.Bar(x=x, y=other, name="other (activations, runtime)"),
        ]
    )
    fig.update_layout(
        barmode="stack", title="Memory per trial (peak above baseline)", xaxis_title="trial", yaxis_title="GB"
    )
    return fig


def roofline(df: pd.DataFrame, color: str = "quantization") -> go.Figure:
    """Achieved output tok/s against each trial's decode bound; the diagonal is the bound itself (estimate)."""
    d = complete_trials(df)
    if d.empty or "roofline_output_tok_s" not in d or d["roofline_output_tok_s"].dropna().empty:
        return empty_figure("Roofline (estimate)", "no completed trial has a roofline (no bandwidth known)")
    d = d.dropna(subset=["roofline_output_tok_s", "output_tok_s"])
    groups = list(d[color].unique()) if color in d else [None]
    colours = colour_map(groups)
    fig = go.Figure()
    for g in groups:
        part = d if g is None else d[d[color] == g]
        fig.add_trace(
            go.Scatter(
                x=part["roofline_output_tok_s"],
                y=part["output_tok_s"],
                mode="markers",
                name=f"{color}={g}" if g is not None else "trials",
                marker={"color": colours.get(g), "size": 9},
                text=[
                    f"#{n}: {100 * f:.1f}% of the bound"
                    for n, f in zip(part["number"], part["roofline_fraction"], strict=True)
                ],
                hovertemplate="%{text}<br>bound %{x:,.0f} tok/s<br>achieved %{y:,.0f} tok/s<extra></extra>",
            )
        )
    lo = float(min(d["output_tok_s"].min(), d["roofline_output_tok_s"].min()))
    hi = float(d["roofline_output_tok_s"].max())
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="bound (achieved = bound)",
            line={"dash": "dash", "color": "grey"},
        )
    )
    fig.update_xaxes(title_text="decode bound, output tok/s (estimate)", type="log")
    fig.update_yaxes(title_text="achieved output tok/s", type="log")
    fig.update_layout(title="Roofline: achieved throughput against the memory-bandwidth bound (estimate)")
    return fig


def accuracy_by_quantization(df: pd.DataFrame, gate: float | None = None) -> go.Figure:
    """GSM8K per quantization: mean score with a binomial standard error, and the gate's pass mark."""
    d = complete_trials(df)
    if d.empty or "gsm8k_score" not in d or d["gsm8k_score"].dropna().empty:
        return empty_figure("GSM8K accuracy by quantization", "no trial measured GSM8K")
    d = d.dropna(subset=["gsm8k_score"])
    key = d["quantization"].astype(str) if "quantization" in d else pd.Series("all", index=d.index)
    rows = []
    for q, g in d.groupby(key):
        score = float(g["gsm8k_score"].mean())
        n = float(g["gsm8k_n"].max()) if "gsm8k_n" in g and not g["gsm8k_n"].dropna().empty else math.nan
        p = min(max(score / 100, 0.0), 1.0)
        se = 100 * math.sqrt(p * (1 - p) / n) if n and n == n and n > 0 else 0.0
        rows.append((q, score, se, n))
    fig = go.Figure(
        go.Bar(
            x=[r[0] for r in rows],
            y=[r[1] for r in rows],
            error_y={"type": "data", "array": [r[2] for r in rows], "visible": True},
            text=[f"n={int(r[3])}" if r[3] == r[3] else "" for r in rows],
            textposition="outside",
        )
    )
    if gate is not None:
        fig.add_hline(y=gate, line_dash="dash", line_color="red", annotation_text=f"gate {gate:.2f}")
    fig.update_layout(
        title="GSM8K accuracy by quantization (± 1 standard error)",
        xaxis_title="quantization",
        yaxis_title="score",
    )
    return fig


def study_figures(study: Any, df: pd.DataFrame | None = None) -> dict[str, go.Figure]:
    """Every figure of a study, by file-friendly name (what the report and MLflow get)."""
    df = trials_frame(study) if df is None else df
    objectives = study.user_attrs.get("objectives") or ["output_tok_s"]
    direction = study.directions[0].name.lower()
    gate = None
    if "gsm8k_gate_threshold" in df and not df["gsm8k_gate_threshold"].dropna().empty:
        gate = float(df["gsm8k_gate_threshold"].dropna().iloc[-1])
    return {
        "optimization_history": optimization_history(df, objectives[0], direction),
        "pareto_front": pareto_front(df, y="gsm8k_score")
        if "gsm8k_score" in df
        else pareto_front(df, y="ttft_ms_p95", y_maximize=False),
        "param_importances": param_importances(study),
        "parallel_coordinates": parallel_coordinates(study),
        "latency_curves": latency_curves(df),
        "memory_breakdown": memory_breakdown(df),
        "roofline": roofline(df),
        "accuracy_by_quantization": accuracy_by_quantization(df, gate),
    }
