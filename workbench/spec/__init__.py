"""Study definitions: YAML files validated into typed models, with errors that point at the mistake.

A study file names the model, the engine, the search space, the workload, and the objectives and
constraints the search is judged by. Every mistake is reported in one message naming the file, the
line, the key path, the bad value and what is allowed; unknown keys are errors.

The package: `models` and `workload` (the typed sections), `yamlload` (reading a file), `validate`
(the models, then the knobs and options against the engine), `overrides` (`--set` and dotted-key
changes), `errors` (`SpecError` and located messages). Import from here: `from workbench.spec import X`.
"""

from __future__ import annotations

from workbench.spec.base import SCALAR
from workbench.spec.errors import SpecError
from workbench.spec.models import (
    AccuracySpec,
    Budget,
    Choices,
    Constraint,
    ContainerSpec,
    GateSpec,
    ModelSpec,
    Objective,
    Range,
    RuntimeSpec,
    SamplerSpec,
    SloSpec,
    StudySpec,
    TrialSettings,
)
from workbench.spec.overrides import apply_changes, parse_knob_assignments, set_dotted
from workbench.spec.validate import require_local_paths, validate_spec
from workbench.spec.workload import (
    Arrival,
    Burst,
    Concurrency,
    DatasetSpec,
    FixedLen,
    LengthDist,
    NormalLen,
    Rate,
    Sweep,
    UniformLen,
    WorkloadSpec,
)
from workbench.spec.yamlload import load_spec, read_yaml

__all__ = [
    "SCALAR",
    "AccuracySpec",
    "Arrival",
    "Budget",
    "Burst",
    "Choices",
    "Concurrency",
    "Constraint",
    "ContainerSpec",
    "DatasetSpec",
    "FixedLen",
    "GateSpec",
    "LengthDist",
    "ModelSpec",
    "NormalLen",
    "Objective",
    "Range",
    "Rate",
    "RuntimeSpec",
    "SamplerSpec",
    "SloSpec",
    "SpecError",
    "StudySpec",
    "Sweep",
    "TrialSettings",
    "UniformLen",
    "WorkloadSpec",
    "apply_changes",
    "load_spec",
    "parse_knob_assignments",
    "read_yaml",
    "require_local_paths",
    "set_dotted",
    "validate_spec",
]
