"""Trials: a plan made once, executed by a worker in the engine's own environment, a result.

`run_trial` (workbench.trials.run) is the entry for callers; `build_key_for` gives the study layer
the key that identifies a trial's weights without running it. Both are imported lazily, so the
worker side (`python -m workbench.trials.worker`) pulls in nothing it does not use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_key_for", "run_trial"]


def __getattr__(name: str) -> Any:
    if name == "build_key_for":
        from workbench.trials.plan import build_key_for

        return build_key_for
    if name == "run_trial":
        from workbench.trials.run import run_trial

        return run_trial
    raise AttributeError(f"module 'workbench.trials' has no attribute {name!r}")
