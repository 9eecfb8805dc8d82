"""Plotly figures, one function per figure, shared by notebooks, the HTML report and MLflow; split by
audience: one study (`study`), many runs (`runs`), one trial (`trial`).

Each function takes the trials table (`workbench.study.trials_frame`), the Optuna study, runs or a
result, and returns a `plotly.graph_objects.Figure`; none reads files or talks to a server.
"""

from workbench.plots._common import QUANT_COLOURS
from workbench.plots.runs import compare_runs, metric_by, strategy_comparison
from workbench.plots.study import (
    accuracy_by_quantization,
    latency_curves,
    memory_breakdown,
    optimization_history,
    parallel_coordinates,
    param_importances,
    pareto_front,
    pareto_mask,
    roofline,
    study_figures,
)
from workbench.plots.trial import server_timeline, trial_figures

__all__ = [
    "QUANT_COLOURS",
    "accuracy_by_quantization",
    "compare_runs",
    "latency_curves",
    "memory_breakdown",
    "metric_by",
    "optimization_history",
    "parallel_coordinates",
    "param_importances",
    "pareto_front",
    "pareto_mask",
    "roofline",
    "server_timeline",
    "strategy_comparison",
    "study_figures",
    "trial_figures",
]
