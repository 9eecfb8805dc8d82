"""A trial plan: everything a worker process needs, as JSON, so the worker shares no state with its parent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workbench.engines.base import DeviceInfo, ModelPool, OpenContext
from workbench.spec import AccuracySpec, ModelSpec, StudySpec, WorkloadSpec


class TrialPlan(BaseModel):
    schema_version: int = 1
    study: str
    trial_id: str
    engine: str
    engine_options: dict[str, Any] = {}
    knobs: dict[str, Any]
    model: ModelSpec
    model_source: str
    workload: WorkloadSpec
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
    #: {baseline, max_drop, alpha, beta, sigma, sequential, chunk} when the accuracy gate applies
    accuracy_gate: dict[str, Any] | None = None
    #: gsm8k metrics measured by an earlier trial with the same build key, to reuse
    accuracy_reuse: dict[str, Any] | None = None

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
        return OpenContext(
            model_source=self.model_source,
            device=self.device,
            model_revision=self.model.revision,
            tokenizer=self.model.tokenizer,
            model_dtype=self.model.dtype,
            load_format=self.model.load_format,
            trust_remote_code=self.model.trust_remote_code,
            options=self.engine_options,
            study_dir=study_dir,
            knobs=self.knobs,
            longest_request=None if i is None or o is None else i + o,
            cpu_kv_budget_gb=self.cpu_kv_budget_gb,
            out_dir=self.out_dir,
            model_pool=model_pool,
        )

    @classmethod
    def make(
        cls,
        spec: StudySpec,
        trial_id: str,
        knobs: dict[str, Any],
        device: DeviceInfo,
        cache_dir: Path,
        out_dir: Path,
        accuracy_gate: dict[str, Any] | None = None,
        accuracy_reuse: dict[str, Any] | None = None,
    ) -> TrialPlan:
        ds = spec.workload.dataset
        acc = spec.accuracy
        return cls(
            study=spec.name,
            trial_id=trial_id,
            engine=spec.engine,
            engine_options=spec.engine_options,
            knobs=knobs,
            model=spec.model,
            model_source=spec.model_source,
            workload=spec.workload,
            dataset_path=str(spec.resolve_path(ds.path)) if ds else None,
            device_kind=device.kind,
            device_name=device.name,
            device_total_memory_bytes=device.total_memory_bytes,
            device_compute_capability=device.compute_capability,
            device_index=device.index,
            cpu_kv_budget_gb=spec.trial.cpu_kv_budget_gb,
            threads=spec.trial.threads,
            cache_dir=str(cache_dir),
            out_dir=str(out_dir),
            accuracy=acc,
            accuracy_data_path=str(spec.resolve_path(acc.data_path)) if acc and acc.data_path else None,
            accuracy_gate=accuracy_gate,
            accuracy_reuse=accuracy_reuse,
        )
