"""What a GSM8K evaluation returns: the two filters' accuracies, their standard errors, the samples.

Scores are computed here from per-question results, not taken from lm-eval's aggregate, because an
evaluation runs in chunks (to stop early) and `bootstrap_iters=0` turns lm-eval's stderr off anyway.
Pure Python: the trial layer reads results without importing lm-eval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.accuracy.tasks import FILTERS

#: per question (doc_id): filter name -> exact match (0.0 or 1.0)
PerDoc = dict[int, dict[str, float]]


@dataclass
class AccuracyResult:
    task: str
    n: int
    n_total: int
    strict: float  # fractions 0..1
    flexible: float
    strict_stderr: float
    flexible_stderr: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    seconds: float = 0.0
    lm_eval_config: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """TensorRT-LLM's GSM8K score: mean of the two filters, x 100."""
        return (self.strict + self.flexible) / 2 * 100

    def metrics(self) -> dict[str, float]:
        m = {
            "gsm8k_strict": self.strict,
            "gsm8k_flexible": self.flexible,
            "gsm8k_score": self.score,
            "gsm8k_strict_stderr": self.strict_stderr,
            "gsm8k_flexible_stderr": self.flexible_stderr,
            "gsm8k_n": float(self.n),
            "gsm8k_s": self.seconds,
        }
        if self.gate is not None:
            m["gsm8k_gate_passed"] = float(self.gate["decision"] == "pass")
            m["gsm8k_gate_threshold"] = self.gate["threshold"]
        return m


def mean_stderr(xs: list[float]) -> tuple[float, float]:
    """The mean and its standard error (NaN for fewer than two values)."""
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return mean, sd / math.sqrt(n)


def score_of(per_doc: PerDoc) -> float:
    """TensorRT-LLM's score (mean of the two filters x 100) of the questions answered so far."""
    vals = list(per_doc.values())
    return sum(d[FILTERS[0]] + d[FILTERS[1]] for d in vals) / (2 * len(vals)) * 100


def write_samples(res: AccuracyResult, path: str | Path) -> Path:
    """One JSON line per question and filter: what lm-eval logged for it."""
    path = Path(path)
    with open(path, "w") as f:
        for s in res.samples:
            f.write(json.dumps(s, default=str) + "\n")
    return path
