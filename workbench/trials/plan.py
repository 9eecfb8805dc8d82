"""A trial plan: everything a worker process needs, as JSON, so the worker shares no state with its parent.

This module is the contract both processes read; the plan is made once per trial, in the orchestrator
(`trials/orchestrator/planning.py`: knobs resolved, split into build and runtime knobs, the build key
hashed with the package versions of the worker's environment). The worker and the executors read
these fields; nothing recomputes them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, PrivateAttr

from workbench.accuracy.gate import AccuracyGate, AccuracyReuse
from workbench.engines.base import DeviceInfo, ModelPool, OpenContext
from workbench.spec import AccuracySpec, ModelSpec, SloSpec, WorkloadSpec


class TrialPlan(BaseModel):
    schema_version: int = 2
    study: str
    trial_id: str
    engine: str
    engine_options: dict[str, Any] = {}
    #: the study file's folder: relative paths in engine_options (calibration data, checkpoints) start there
    study_dir: str | None = None
    knobs: dict[str, Any]
    build_knobs: dict[str, Any] = {}
    runtime_knobs: dict[str, Any] = {}
    #: the artifact cache key; None when the engine builds nothing for these knobs
    build_key: str | None = None
    #: the same hash whether or not anything is built: trials with equal keys have equal weights
    material_key: str | None = None
    #: what the key hashes (recorded in the cache entry's manifest)
    key_material: dict[str, Any] | None = None
    model: ModelSpec
    model_source: str
    workload: WorkloadSpec
    #: service targets (goodput, the highest load meeting them); None: the study sets none
    slo: SloSpec | None = None
    dataset_path: str | None = None
    device_kind: str
    device_name: str
    device_total_memory_bytes: int
    device_compute_capability: tuple[int, int] | None = None
    device_index: int | None = None
    cpu_kv_budget_gb: float
    threads: int | None = None
    cache_dir: str
    out_dir: str
    accuracy: AccuracySpec | None = None
    accuracy_data_path: str | None = None
    accuracy_gate: AccuracyGate | None = None
    #: GSM8K metrics measured by an earlier trial with the same weights, to reuse
    accuracy_reuse: AccuracyReuse | None = None
    _options: Any = PrivateAttr(default=None)

    def options(self) -> Any:
        """`engine_options` as the engine's options model, validated once per plan (`Engine.parse_options`):
        every context made from this plan carries this one object."""
        if self._options is None:
            from workbench.engines import get_engine_class

            self._options = get_engine_class(self.engine).parse_options(self.engine_options)
        return self._options

    @property
    def device(self) -> DeviceInfo:
        return DeviceInfo(
            self.device_kind,
            self.device_name,
            self.device_total_memory_bytes,
            self.device_compute_capability,
            self.device_index,
        )

    def open_context(self, model_pool: ModelPool | None = None, study_dir: str | None = None) -> OpenContext:
        """What the engine may see of this plan (`Engine.build`/`open` take nothing else)."""
        from workbench.trials.workload import longest_lengths

        i, o = longest_lengths(self.workload)
        return OpenContext.for_model(
            self.model,
            self.model_source,
            device=self.device,
            options=self.options(),
            study_dir=study_dir or self.study_dir,
            knobs=self.knobs,
            longest_request=None if i is None or o is None else i + o,
            cpu_kv_budget_gb=self.cpu_kv_budget_gb,
            out_dir=self.out_dir,
            model_pool=model_pool,
            study=self.study,
            trial_id=self.trial_id,
        )
