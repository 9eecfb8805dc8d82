"""The engine contract: `Engine` (declarations, build, open) and `Runner` (an opened engine).

Like Optuna's `BaseSampler`, the base classes are small and their contracts are written here; every
registered engine passes the conformance suite in `tests/engines/conformance.py`.

An engine is a class with declarations readable in the light orchestrating process (`name`,
`version`, `knobs`, `options_model`, feasibility), and an instance is that engine bound to one trial:
`Engine(ctx)` holds the trial's `OpenContext`, whose `options` the trial layer validated once with
`parse_options` (every engine module reads that typed object; none validates again). Its methods:

- `build(build_knobs, out_dir)` writes an artifact (a quantized checkpoint, a TensorRT engine)
  that the trial layer caches under the build key; only called when `needs_build(build_knobs)`.
- `open(artifact, runtime_knobs)` returns a `Runner`: `submit` never blocks, `collect` returns
  finished requests with per-token timestamps (``time.perf_counter()`` seconds in the worker), `stats`
  tells what the trial layer needs for memory, KV and roofline figures, `close` frees everything.
- `build_material(build_knobs)` and `export(knobs, out)`, which the orchestrating process calls.

Heavy imports (torch, transformers, tensorrt_llm) happen inside methods, so importing an engine module
costs nothing. Nothing here imports above `workbench.types` and `workbench.knobs`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from workbench.engines.comparison import Crosscheck
from workbench.engines.runner import Runner
from workbench.knobs import KnobDef
from workbench.types import (  # noqa: F401 - re-exported: engines speak these types
    Artifact,
    BuildError,
    DeviceInfo,
    EngineError,
    EngineNotInstalled,
    FeasibilityContext,
    Request,
    RequestRecord,
    WorkbenchError,
)


class ModelPool(Protocol):
    """Models kept loaded between trials of one process (grid recording): key -> loaded model."""

    def get(self, key: Any) -> Any: ...
    def put(self, key: Any, model: Any) -> None: ...
    def clear(self) -> None: ...


@dataclass(frozen=True)
class OpenContext:
    """Everything an engine may know when it builds or opens, instead of the whole trial plan.

    Made once per trial by the trial layer (`TrialPlan.open_context()`); engines must not reach
    for anything else.
    """

    model_source: str
    device: DeviceInfo
    model_revision: str | None = None
    tokenizer: str | None = None
    model_dtype: str = "auto"
    load_format: str = "auto"
    trust_remote_code: bool = False
    #: the study's `engine_options:` as the engine's `options_model` instance (`Engine.parse_options`,
    #: the one validation; None where the context was made without an engine: its defaults then)
    options: Any = None
    #: the study file's folder: relative paths in `options` are relative to it
    study_dir: str | None = None
    #: all knobs of the trial (build and runtime), for engines whose runtime depends on a build knob
    knobs: dict[str, Any] = field(default_factory=dict)
    #: the most tokens (prompt + output) one request of the trial can need; None when unknown
    longest_request: int | None = None
    #: the CPU memory budget the KV fraction is a share of, when the device is a CPU
    cpu_kv_budget_gb: float = 4.0
    #: the trial's folder (engines may write logs there)
    out_dir: str | None = None
    #: models kept loaded across trials of one process (grid recording); None: load every time
    model_pool: ModelPool | None = None
    #: the hub id when the model comes from the hub (some vendor tools want it rather than a path)
    model_id: str | None = None
    #: the study and trial, for headers of exported files and logs
    study: str = ""
    trial_id: str = ""

    @classmethod
    def for_model(cls, model: Any, model_source: str, **fields: Any) -> OpenContext:
        """A context whose model fields come from a study's `model:` section (a `ModelSpec`)."""
        return cls(
            model_source=model_source,
            model_revision=model.revision,
            tokenizer=model.tokenizer,
            model_dtype=model.dtype,
            load_format=model.load_format,
            trust_remote_code=model.trust_remote_code,
            model_id=getattr(model, "id", None),
            **fields,
        )


class NoOptions(BaseModel):
    """The `engine_options:` of an engine that takes none (any key is an error)."""

    model_config = ConfigDict(extra="forbid")


class CrosscheckError(WorkbenchError, RuntimeError):
    """A cross-check cannot run (the vendor tool is missing, its build cannot express the trial) or failed."""


@dataclass(frozen=True)
class CrosscheckInput:
    """What the caller (the command line) hands an engine's cross-check: all engine-neutral."""

    #: the study definition (`workbench.spec.StudySpec`)
    spec: Any
    #: the study's engine options, validated once (`Engine.parse_options`)
    options: Any
    trial_number: int
    knobs: dict[str, Any]
    #: the trial's own metrics, compared with the vendor tool's
    metrics: dict[str, float]
    #: the folder the cross-check writes its dataset, commands, logs and report into
    work: Path
    #: the requests the trial measured (its first repeat: same seed, order and lengths)
    requests: list[Request]
    eos_id: int | None = None
    #: the trial's cached artifact (from its result), when there is one
    artifact_path: Path | None = None
    #: measure the workbench's own artifact even where the vendor tool could build one
    use_own_artifact: bool = False
    log: Callable[[str], None] = print
    #: the trial's own `OpenContext` (device, engine options, CPU KV budget...), made on demand by the
    #: trial layer, for a cross-check that opens the engine itself (AIPerf starts the trial's server)
    open_context: Callable[[], OpenContext] | None = None


class EngineDeclarations:
    """What a study's `engine:` names, readable without running anything: knobs, options, feasibility,
    packages and how its trials are measured (`executor`). `Engine` adds the methods of an engine bound
    to a trial; a name whose trials are answered otherwise (`replay`, by its executor) declares only this.

    Every engine declares the four core knobs (`workbench.knobs.CORE_KNOBS`) under their study names;
    what each means in the engine is said in its `KnobDef.help`.
    """

    name: ClassVar[str]
    #: bump when the way artifacts are built changes, so old cache entries are not reused
    version: ClassVar[str]
    knobs: ClassVar[dict[str, KnobDef]]
    #: the pydantic model of the study's `engine_options:` (`NoOptions`: the engine takes none)
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: the Python packages whose versions enter provenance and the build key
    packages: ClassVar[tuple[str, ...]] = ()
    #: how a trial of this engine is measured: "worker" (a worker process) or "replay" (looked up)
    executor: ClassVar[str] = "worker"
    #: the engine vendor's own benchmark that `crosscheck` runs (None: the engine has no cross-check)
    crosscheck_tool: ClassVar[str | None] = None

    @classmethod
    def parse_options(cls, raw: dict[str, Any] | None) -> Any:
        """The study's `engine_options:` as this engine's options model: the one place they are validated
        (pydantic's ValidationError for bad ones; `workbench validate` reports them with their lines)."""
        return cls.options_model.model_validate(raw or {})

    @classmethod
    def options_of(cls, context: FeasibilityContext) -> Any:
        """The validated options a feasibility context carries (the engine's defaults when it has none)."""
        return cls.parse_options({}) if context.options is None else context.options

    @classmethod
    def default_knobs(cls) -> dict[str, Any]:
        return {k.name: k.default for k in cls.knobs.values()}

    @classmethod
    def check_available(cls) -> str | None:
        """Why this engine cannot run in this environment (a missing package, with the install route)."""
        return None

    @classmethod
    def check_available_for(cls, options: Any) -> str | None:
        """`check_available` with the study's validated engine options (a server program configured by
        path); None: the engine's defaults."""
        return cls.check_available()

    @classmethod
    def doctor_notes(cls) -> list[str]:
        """Lines `workbench doctor` prints under the engine: which of its set-ups works on this machine."""
        return []

    @classmethod
    def check_options(cls, options: Any, study_dir: str | None) -> list[tuple[tuple[str, ...], str]]:
        """Problems of validated options that only the engine can see (a missing file), as (key path, message)."""
        return []

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        """Why this combination cannot run on this device, or None. Must be cheap and import-free."""
        return None

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        """False when the build knobs describe the source model itself (nothing to build or cache)."""
        return True

    @classmethod
    def needs_build_for(cls, options: Any, build_knobs: dict[str, Any]) -> bool:
        """`needs_build` with the study's engine options (an option may say a build is not needed:
        a backend without one, a choice mapped to a ready checkpoint). Defaults to `needs_build`."""
        return cls.needs_build(build_knobs)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        """Markdown lines the exported README adds after its file list (how to use the files)."""
        return []

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> Crosscheck:
        """Run `crosscheck_tool` on the trial's configuration and compare; return the comparison (an
        `engines.comparison.Crosscheck`: each metric beside ours, ratio tool / ours); files in `inp.work`."""
        raise CrosscheckError(
            f"the {cls.name} engine has no cross-check (no vendor benchmark to compare with)"
        )


class Engine(EngineDeclarations, abc.ABC):
    """Base class of engines: the declarations, and an instance bound to one trial (`Engine(ctx)`) that
    builds, opens and exports. Subclasses declare `name`, `version` and `knobs` as class data."""

    def __init__(self, ctx: OpenContext) -> None:
        """The engine bound to one trial: `ctx.options` is already its validated options model."""
        if ctx.options is None:
            ctx = replace(ctx, options=self.parse_options({}))
        elif not isinstance(ctx.options, self.options_model):
            raise TypeError(
                f"{self.name}: OpenContext.options must be a {self.options_model.__name__} "
                f"(Engine.parse_options), not {type(ctx.options).__name__}"
            )
        self.ctx = ctx
        self.options = ctx.options

    def require_available(self) -> None:
        """Where the engine runs: without its packages (or its server program) that is a clear failure."""
        missing = type(self).check_available_for(self.options)
        if missing is not None:
            raise EngineNotInstalled(missing)

    def build_material(self, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """What the build key hashes of the build knobs; engines translating knobs hash the translation."""
        return build_knobs

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        """Write the deployable configuration of these knobs into `out`; return the files written."""
        return []

    @abc.abstractmethod
    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """Write the artifact into `out_dir`; return manifest fields worth recording."""

    @abc.abstractmethod
    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner: ...
