"""The data types and errors every layer shares: the bottom floor of the package.

Engines, trials, the study layer and the front ends all speak in these types, so they live here and
not in any of those layers (the engine contract itself is `workbench.engines.base`). Standard library
only: the trial worker imports this module inside an engine's own environment.

Errors have one base class, `WorkbenchError`. Two families matter to callers:

- `InputError`: the user's input is wrong (a study file, an option, a stored study that does not match);
  the command line turns it into one message and exit code 2.
- `EngineError`: the engine failed a trial; its `kind` is one of `FAILURE_KINDS` and becomes the trial's
  `failure_kind`. Every subclass must keep `kind` within `FailureKind` (the conformance suite checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

Status = Literal["COMPLETE", "FAILED", "INFEASIBLE", "PRUNED"]
FailureKind = Literal[
    "infeasible",
    "timeout",
    "oom",
    "crash",
    "engine_error",
    "build_error",
    "not_installed",
    "interrupted",
    "invalid_input",
    "pruned",
]
FAILURE_KINDS: tuple[str, ...] = get_args(FailureKind)


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class InputError(WorkbenchError, ValueError):
    """Bad input (a study file, an option, a path): one clear message, exit code 2."""


class DeviceError(InputError):
    """The study asks for a device this machine lacks (trial.device: cuda without a GPU): exit code 2."""


class EngineError(WorkbenchError, RuntimeError):
    """The engine itself failed (requests failed, a build failed): the trial fails with this cause."""

    kind: FailureKind = "engine_error"


class BuildError(EngineError):
    kind: FailureKind = "build_error"


class EngineNotInstalled(EngineError):
    """The engine's packages are missing from the environment the worker runs in."""

    kind: FailureKind = "not_installed"


@dataclass(frozen=True)
class DeviceInfo:
    """What the trial will run on, known before any work so feasibility can be decided up front."""

    kind: str  # "cpu" or "cuda"
    name: str
    total_memory_bytes: int
    compute_capability: tuple[int, int] | None = None
    index: int | None = None

    @property
    def arch(self) -> str:
        """Part of the build key: artifacts are only valid on the architecture they were built for."""
        if self.kind == "cuda" and self.compute_capability:
            return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"
        return self.kind


@dataclass(frozen=True)
class FeasibilityContext:
    """What feasibility and memory estimates may look at besides the knobs, all known before any work."""

    #: the model's config.json ({} when it cannot be read without the network)
    model_config: dict[str, Any] = field(default_factory=dict)
    model_dtype: str = "auto"
    load_format: str = "auto"
    #: the workload's longest prompt and output in tokens (None when a dataset decides)
    longest_prompt: int | None = None
    longest_output: int | None = None
    #: GSM8K prompts are truncated to accuracy.max_input_len and generate up to max_gen_toks
    accuracy_input_len: int | None = None
    accuracy_gen_len: int | None = None
    #: the study's engine_options as the engine's options model (`Engine.parse_options`, validated
    #: once); None: the engine's defaults (`Engine.options_of` reads either)
    options: Any = None
    #: the study file's folder, which relative paths in engine_options are relative to
    study_dir: str | None = None


@dataclass
class Request:
    id: str
    input_ids: list[int]
    max_new_tokens: int
    ignore_eos: bool = True
    stop: list[str] = field(default_factory=list)


@dataclass
class RequestRecord:
    """One finished request with every timestamp the metrics need."""

    id: str
    input_len: int
    arrival: float
    token_times: list[float]
    finish: float
    output_ids: list[int] = field(default_factory=list)
    error: str | None = None
    #: the decoded continuation, for engines that detokenize (and apply stop strings) themselves
    text: str | None = None

    @property
    def output_len(self) -> int:
        return len(self.token_times)

    @property
    def first_token(self) -> float | None:
        return self.token_times[0] if self.token_times else None


@dataclass(frozen=True)
class Artifact:
    """What `build` produced (or the source model when the build knobs need no build)."""

    path: Path
    build_key: str | None
    manifest: dict[str, Any]
    cache_hit: bool = False
