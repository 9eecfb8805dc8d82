"""What the figure modules share: the colours of quantization choices, the complete trials, an empty figure."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

QUANT_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def complete_trials(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["state"] == "COMPLETE"] if "state" in df and "number" in df else df.iloc[0:0]


def colour_map(values: list[Any]) -> dict[Any, str]:
    return {v: QUANT_COLOURS[i % len(QUANT_COLOURS)] for i, v in enumerate(sorted(map(str, set(values))))}


def empty_figure(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        annotations=[{"text": why, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}],
    )
    return fig
