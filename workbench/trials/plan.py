"""A trial plan: everything a worker process needs, as JSON, so the worker shares no state with its parent.

The plan is made once per trial, in the orchestrator: knobs resolved (`workbench.trials.knobs`), split
into build and runtime knobs, the build key hashed with the package versions of the environment the
worker will run in (asked of the launcher, which may be another interpreter or a container), and
the accuracy gate typed. The worker and the executors read these fields; nothing recomputes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from workbench.accuracy.gate import AccuracyGate, AccuracyReuse
from workbench.engines.base import DeviceInfo, ModelPool, OpenContext
from workbench.spec import AccuracySpec, ModelSpec, SloSpec, StudySpec, WorkloadSpec

if TYPE_CHECKING:
    from workbench.trials.launchers import Launcher


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
            options=self.engine_options,
            study_dir=study_dir or self.study_dir,
            knobs=self.knobs,
            longest_request=None if i is None or o is None else i + o,
            cpu_kv_budget_gb=self.cpu_kv_budget_gb,
            out_dir=self.out_dir,
            model_pool=model_pool,
            study=self.study,
            trial_id=self.trial_id,
        )

    @classmethod
    def make(
        cls,
        spec: StudySpec,
        trial_id: str,
        values: dict[str, Any],
        device: DeviceInfo,
        cache_dir: Path,
        out_dir: Path,
        accuracy_gate: AccuracyGate | dict[str, Any] | None = None,
        accuracy_reuse: AccuracyReuse | dict[str, Any] | None = None,
        *,
        launcher: Launcher | None = None,
        keyed: bool = True,
    ) -> TrialPlan:
        """The plan of one trial of `spec` with knob `values` (the rest resolved from the baseline).

        With `keyed` (the default) the build key is hashed too (`add_keys`); `run_trial` hashes it only
        once the trial is known to be feasible."""
        from workbench.engines import get_engine_class
        from workbench.knobs import split_knobs
        from workbench.trials.knobs import resolve_knobs

        knobs = resolve_knobs(spec, values)
        engine_cls = get_engine_class(spec.engine)
        build_knobs, runtime_knobs = split_knobs(engine_cls.knobs, knobs)
        plan = cls(
            **_spec_fields(spec),
            trial_id=trial_id,
            knobs=knobs,
            build_knobs=build_knobs,
            runtime_knobs=runtime_knobs,
            **_device_fields(device),
            cache_dir=str(cache_dir),
            out_dir=str(out_dir),
            accuracy_gate=accuracy_gate,
            accuracy_reuse=accuracy_reuse,
        )
        if keyed:
            plan.add_keys(spec, launcher)
        return plan

    def add_keys(self, spec: StudySpec, launcher: Launcher | None = None) -> None:
        """Hash what shapes the artifact, with the package versions of the worker's environment."""
        from workbench.engines import get_engine_class
        from workbench.trials.cache import build_key

        engine_cls = get_engine_class(self.engine)
        if engine_cls.executor != "worker" or self.material_key is not None:
            return
        self.key_material = _material(self, engine_cls, spec, launcher)
        self.material_key = build_key(self.key_material)
        needs = engine_cls.needs_build_for(self.engine_options, self.build_knobs)
        self.build_key = self.material_key if needs else None


def _spec_fields(spec: StudySpec) -> dict[str, Any]:
    ds = spec.workload.dataset
    acc = spec.accuracy
    return {
        "study": spec.name,
        "engine": spec.engine,
        "engine_options": spec.engine_options,
        "study_dir": str(spec.source_path.parent) if spec.source_path else None,
        "model": spec.model,
        "model_source": spec.model_source,
        "workload": spec.workload,
        "slo": spec.slo,
        "dataset_path": str(spec.resolve_path(ds.path)) if ds else None,
        "cpu_kv_budget_gb": spec.trial.cpu_kv_budget_gb,
        "threads": spec.trial.threads,
        "accuracy": acc,
        "accuracy_data_path": str(spec.resolve_path(acc.data_path)) if acc and acc.data_path else None,
    }


def _device_fields(device: DeviceInfo) -> dict[str, Any]:
    return {
        "device_kind": device.kind,
        "device_name": device.name,
        "device_total_memory_bytes": device.total_memory_bytes,
        "device_compute_capability": device.compute_capability,
        "device_index": device.index,
    }


def _material(plan: TrialPlan, engine_cls: Any, spec: StudySpec, launcher: Launcher | None) -> dict[str, Any]:
    from workbench.trials.cache import KEY_PACKAGES, artifact_material
    from workbench.trials.launchers import launcher_for

    launcher = launcher or launcher_for(spec.runtime)
    versions = launcher.package_versions(tuple(sorted({*KEY_PACKAGES, *engine_cls.packages})))
    return artifact_material(plan, engine_cls, plan.build_knobs, versions)


def build_key_for(
    spec: StudySpec, knobs: dict[str, Any], device: DeviceInfo, launcher: Launcher | None = None
) -> str | None:
    """The hash of everything that shapes a trial's weights and outputs (model, dtype, build knobs,
    engine and package versions of the worker's environment), whether or not the engine builds
    anything: trials with the same key give the same answers, so accuracy measured once is reused.
    None for engines whose trials run no worker (replay)."""
    plan = TrialPlan.make(spec, "key", knobs, device, Path("."), Path("."), launcher=launcher)
    return plan.material_key
