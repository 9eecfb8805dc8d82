"""The GSM8K gate: TensorRT-LLM's one-tailed test, typed, computed in one place.

A trial passes when its score is credibly at least `baseline - max_drop`. The statistics are
TensorRT-LLM's (alpha, beta, sigma = 50 for a 0-100 Bernoulli score); `sequential_decision` lets an
evaluation stop early once a Bonferroni-corrected interval is wholly on one side of the pass mark.
Pure functions and pydantic models only: the trial worker imports this in any environment.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

#: the GSM8K metrics an earlier trial with the same weights can lend to a later one
REUSABLE_METRICS = (
    "gsm8k_strict",
    "gsm8k_flexible",
    "gsm8k_score",
    "gsm8k_strict_stderr",
    "gsm8k_flexible_stderr",
    "gsm8k_n",
)


def z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def gate_threshold(
    baseline: float, n: int, alpha: float = 0.05, sigma: float = 50.0, max_drop: float = 0.0
) -> float:
    """TensorRT-LLM's pass mark: reference + z(alpha) * sqrt(2 sigma^2 / n), the reference being baseline - drop."""
    return baseline - max_drop + z(alpha) * math.sqrt(2 * sigma**2 / n)


def min_detectable_effect(n: int, alpha: float = 0.05, beta: float = 0.2, sigma: float = 50.0) -> float:
    return -(z(alpha) + z(beta)) * math.sqrt(2 * sigma**2 / n)


def sequential_decision(
    score: float, n: int, threshold: float, looks: int, alpha: float = 0.05, sigma: float = 50.0
) -> str | None:
    """'pass' or 'fail' once a (1 - alpha/looks) interval of the score lies wholly on one side of the
    threshold, else None (go on). Bonferroni over the looks bounds the chance that any early stop
    contradicts the truth of "accuracy >= threshold" by alpha; sigma = 50 is the worst case of a
    0-100 Bernoulli score, so the intervals hold whatever the accuracy."""
    half = z(1 - alpha / (2 * looks)) * sigma / math.sqrt(n)
    if score - half >= threshold:
        return "pass"
    if score + half < threshold:
        return "fail"
    return None


class AccuracyGate(BaseModel):
    """The gate a trial's GSM8K score must pass: made once by the study layer, carried in the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: float
    max_drop: float
    baseline_trial: int | None = None
    alpha: float = 0.05
    beta: float = 0.2
    sigma: float = 50.0
    sequential: bool = True
    chunk: int = 100

    def threshold(self, n: int) -> float:
        return gate_threshold(self.baseline, n, self.alpha, self.sigma, self.max_drop)

    def decide(self, score: float, n: int) -> Literal["pass", "fail"]:
        """The decision on a finished (or reused) measurement of n questions."""
        return "pass" if score >= self.threshold(n) else "fail"

    def record(self, score: float, n: int, /, **extra: Any) -> dict[str, Any]:
        """The gate as the result records it: its settings, the pass mark, n and the decision.

        `extra` adds keys or overrides these (an evaluation records its `score`, `looks`, ...)."""
        return {
            **self.model_dump(),
            "threshold": self.threshold(n),
            "n_used": n,
            "decision": self.decide(score, n),
            **extra,
        }


class AccuracyReuse(BaseModel):
    """GSM8K metrics measured by an earlier trial with the same weights (same accuracy key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trial: int
    accuracy_key: str | None = None
    metrics: dict[str, float]
