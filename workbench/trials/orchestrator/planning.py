"""Planning a trial, in the orchestrator: the plan (`trials/plan.py`) made once, its keys hashed once.

Knobs resolved from the baseline (`workbench.trials.knobs`), split into build and runtime knobs, and
the build key hashed with the package versions of the environment the worker will run in (asked of
the launcher, which may be another interpreter or a container). Here and not with the plan because
the worker only reads a plan: it never resolves knobs or asks a launcher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.accuracy.gate import AccuracyGate, AccuracyReuse
from workbench.engines.base import DeviceInfo
from workbench.spec import StudySpec
from workbench.trials.orchestrator.launchers import Launcher, launcher_for
from workbench.trials.plan import TrialPlan


def make_plan(
    spec: StudySpec,
    trial_id: str,
    values: dict[str, Any],
    device: DeviceInfo,
    cache_dir: Path,
    out_dir: Path,
    accuracy_gate: AccuracyGate | None = None,
    accuracy_reuse: AccuracyReuse | None = None,
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
    plan = TrialPlan(
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
        add_keys(plan, spec, launcher)
    return plan


def add_keys(plan: TrialPlan, spec: StudySpec, launcher: Launcher | None = None) -> None:
    """Hash what shapes the artifact, with the package versions of the worker's environment."""
    from workbench.engines import get_engine_class, worker_engine_class
    from workbench.trials.cache import build_key

    engine_cls = get_engine_class(plan.engine)
    if engine_cls.executor != "worker" or plan.material_key is not None:
        return
    plan.key_material = _material(plan, worker_engine_class(plan.engine), spec, launcher)
    plan.material_key = build_key(plan.key_material)
    needs = engine_cls.needs_build_for(plan.options(), plan.build_knobs)
    plan.build_key = plan.material_key if needs else None


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
    plan = make_plan(spec, "key", knobs, device, Path("."), Path("."), launcher=launcher)
    return plan.material_key
