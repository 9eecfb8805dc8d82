"""The trial result JSON: a versioned contract, the same file on disk and in MLflow.

Field names inside `bench` follow trtllm-bench's --report_json blocks; `metrics` holds the flat
names used by Optuna and MLflow (output_tok_s, ttft_ms_p95, peak_memory_gb, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from workbench.types import FailureKind, Status

RESULT_SCHEMA = "workbench.trial_result"
RESULT_SCHEMA_VERSION = 1
#: what an unrun result copies from the plan (or from a dict of the same fields)
_PLAN_FIELDS = ("study", "trial_id", "engine", "knobs", "build_knobs", "runtime_knobs")


class Failure(BaseModel):
    kind: FailureKind
    message: str
    detail: str | None = Field(None, description="traceback or the end of the worker log")


class TrialResult(BaseModel):
    schema_: str = Field(RESULT_SCHEMA, alias="schema")
    schema_version: int = RESULT_SCHEMA_VERSION
    study: str
    trial_id: str
    status: Status
    failure: Failure | None = None
    engine: str
    model: str
    knobs: dict[str, Any]
    build_knobs: dict[str, Any] = Field(default_factory=dict)
    runtime_knobs: dict[str, Any] = Field(default_factory=dict)
    engine_config: dict[str, Any] = Field(
        default_factory=dict, description="the engine's resolved configuration"
    )
    build: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    bench: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = Field(
        None, description="GSM8K protocol, counts, gate decision or reuse"
    )
    environment: dict[str, Any] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}

    @classmethod
    def unrun(cls, plan: Any, status: Status, failure: Failure | None) -> TrialResult:
        """A result for a trial whose worker produced none (infeasible, or the process itself failed).

        `plan` is a `TrialPlan` or a dict with its fields (study, trial_id, engine, model_source or
        model, knobs, build_knobs, runtime_knobs)."""
        get = plan.get if isinstance(plan, dict) else lambda k, d=None: getattr(plan, k, d)
        fields = {k: get(k) for k in _PLAN_FIELDS if get(k) is not None}
        model = get("model_source") or get("model")
        return cls(**fields, model=model if isinstance(model, str) else "", status=status, failure=failure)

    @classmethod
    def infeasible(cls, plan: Any, reason: str) -> TrialResult:
        """A trial that cannot run on this device with these knobs, said before any work."""
        return cls.unrun(plan, "INFEASIBLE", Failure(kind="infeasible", message=reason))

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def write(self, path: str | Path) -> Path:
        """Write atomically, so a reader never sees half a file."""
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.dump(), indent=2, allow_nan=True))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> TrialResult:
        return cls.model_validate(json.loads(Path(path).read_text()))
