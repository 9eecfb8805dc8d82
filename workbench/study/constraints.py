"""Constraints as Optuna sees them: one named value per constraint, <= 0 is feasible.

A constraint bounds a metric (`max`, `min`) or its drop from the baseline trial. Without a baseline
value, a drop constraint is violated (never passed by default), and the trial records why. When the worker
decided TensorRT-LLM's GSM8K test itself, its pass mark (`gsm8k_gate_threshold`) is the bound.
"""

from __future__ import annotations

import math

from optuna.trial import FrozenTrial

from workbench.spec import StudySpec


def constraint_values(
    spec: StudySpec, metrics: dict[str, float], baseline: dict[str, float] | None
) -> list[float]:
    """Optuna's convention: <= 0 is feasible. A missing metric counts as violated."""
    out = []
    for c in spec.constraints:
        v = metrics.get(c.metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(1.0)
        elif c.max is not None:
            out.append(v - c.max)
        elif c.min is not None:
            out.append(c.min - v)
        elif "gsm8k_gate_threshold" in metrics and c.metric == "gsm8k_score":
            out.append(metrics["gsm8k_gate_threshold"] - v)  # TensorRT-LLM's test, decided in the worker
        else:
            ref = (baseline or {}).get(c.metric)  # no baseline: violated, never passed by default
            out.append(1.0 if ref is None else (ref - c.max_drop_from_baseline) - v)
    return out


def without_baseline(
    spec: StudySpec, metrics: dict[str, float], baseline: dict[str, float] | None
) -> str | None:
    """What to tell the user when a constraint against the baseline had no baseline value to compare with."""
    missing = [
        name
        for c, name in zip(spec.constraints, constraint_names(spec), strict=True)
        if c.max_drop_from_baseline is not None
        and not ("gsm8k_gate_threshold" in metrics and c.metric == "gsm8k_score")
        and (baseline or {}).get(c.metric) is None
    ]
    if not missing:
        return None
    return (
        f"no completed baseline to compare with: {', '.join(missing)} counted as violated "
        "(the baseline is queued again on the next `tune`)"
    )


def constraint_names(spec: StudySpec) -> list[str]:
    """Readable names ("ttft_ms_p95<=2000"), used as Optuna constraint keys and in MLflow."""
    out = []
    for c in spec.constraints:
        if c.max is not None:
            out.append(f"{c.metric}<={c.max:g}")
        elif c.min is not None:
            out.append(f"{c.metric}>={c.min:g}")
        else:
            out.append(f"{c.metric}>=baseline-{c.max_drop_from_baseline:g}")
    return out


def is_feasible(trial: FrozenTrial) -> bool:
    return all(c <= 0 for c in trial.constraints.values())
