"""What a trial's accuracy measurement needs from the study: its key, a measurement to reuse, its gate.

Trials with the same key (same weights and outputs: `workbench.trials.orchestrator.planning.build_key_for`) give the
same GSM8K answers, so an earlier trial's score is reused. The gate (TensorRT-LLM's test against
the baseline's score minus the allowed drop) applies once the baseline has a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from workbench.accuracy.gate import REUSABLE_METRICS, AccuracyGate, AccuracyReuse
from workbench.spec import StudySpec
from workbench.study.record import TrialRecord


@dataclass(frozen=True)
class AccuracyPlan:
    key: str | None = None
    reuse: AccuracyReuse | None = None
    gate: AccuracyGate | None = None


def accuracy_plan(
    study: optuna.Study,
    spec: StudySpec,
    knobs: dict[str, Any],
    device: Any,
    base: FrozenTrial | None,
    is_base: bool,
) -> AccuracyPlan:
    """The trial's accuracy key, an earlier measurement to reuse (same weights), and the gate to apply."""
    if spec.accuracy is None:
        return AccuracyPlan()
    from workbench.trials.orchestrator.planning import build_key_for

    key = build_key_for(spec, knobs, device)
    reuse = _reusable(study, key) if spec.accuracy.reuse != "never" and key else None
    return AccuracyPlan(key, reuse, None if is_base else _gate(spec, base))


def _reusable(study: optuna.Study, key: str) -> AccuracyReuse | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        r = TrialRecord.read(t)
        if r.accuracy_key == key and "gsm8k_score" in r.metrics and not r.is_duplicate:
            kept = {k: r.metrics[k] for k in REUSABLE_METRICS if k in r.metrics}
            return AccuracyReuse(trial=t.number, accuracy_key=key, metrics=kept)
    return None


def _gate(spec: StudySpec, base: FrozenTrial | None) -> AccuracyGate | None:
    drop = next(
        (
            c.max_drop_from_baseline
            for c in spec.constraints
            if c.metric == "gsm8k_score" and c.max_drop_from_baseline is not None
        ),
        None,
    )
    base_metrics = TrialRecord.read(base).metrics if base is not None else {}
    if drop is None or base is None or "gsm8k_score" not in base_metrics or spec.accuracy is None:
        return None
    return AccuracyGate(  # the study's test settings (alpha, beta, sigma, sequential, chunk) as they are
        baseline=base_metrics["gsm8k_score"],
        max_drop=drop,
        baseline_trial=base.number,
        **spec.accuracy.gate.model_dump(),
    )
