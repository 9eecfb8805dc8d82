"""GSM8K accuracy through lm-eval, on any workbench engine runner.

The package's face is light: importing it (or `workbench.accuracy.gate`) does not import lm-eval, so
the trial worker pays for lm-eval only when a trial measures accuracy. Its parts:

- `gate`: TensorRT-LLM's one-tailed test, typed (`AccuracyGate`, `AccuracyReuse`) and pure;
- `tasks`: lm-eval's stock GSM8K task configs, local JSONL or the hub;
- `results`: `AccuracyResult` and `write_samples`;
- `adapter`: `WorkbenchLM`, the lm-eval model over a workbench Runner (imports lm-eval);
- `evaluation`: `evaluate`, chunked so that a gated evaluation can stop early (imports lm-eval).

`WorkbenchLM`, `cut_at_stop`, `evaluate` and `EvalProtocol` are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench.accuracy.gate import (
    REUSABLE_METRICS,
    AccuracyGate,
    AccuracyReuse,
    gate_threshold,
    min_detectable_effect,
    sequential_decision,
    z,
)
from workbench.accuracy.results import AccuracyResult, write_samples
from workbench.accuracy.tasks import FILTERS, TASK_FILES, AccuracyDataError, num_test_docs, task_config

if TYPE_CHECKING:
    from workbench.accuracy.adapter import WorkbenchLM, cut_at_stop
    from workbench.accuracy.evaluation import EvalProtocol, evaluate

#: names that import lm-eval, and the submodule each comes from
_LAZY = {
    "WorkbenchLM": "adapter",
    "cut_at_stop": "adapter",
    "evaluate": "evaluation",
    "EvalProtocol": "evaluation",
}

__all__ = [
    "FILTERS",
    "REUSABLE_METRICS",
    "TASK_FILES",
    "AccuracyDataError",
    "AccuracyGate",
    "AccuracyResult",
    "AccuracyReuse",
    "EvalProtocol",
    "WorkbenchLM",
    "cut_at_stop",
    "evaluate",
    "gate_threshold",
    "min_detectable_effect",
    "num_test_docs",
    "sequential_decision",
    "task_config",
    "write_samples",
    "z",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
