"""The engine interface every backend implements: build -> artifact, open -> runner, generate, close.

Kept free of torch and friends so the orchestrator can import it. Timestamps are
``time.perf_counter()`` seconds taken inside the worker process.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from workbench.knobs import KnobDef


class EngineError(RuntimeError):
    """The engine itself failed (requests failed, a build failed): the trial fails with this cause."""

    kind = "engine_error"


class BuildError(EngineError):
    kind = "build_error"


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
    #: the study's engine_options, validated by the engine's options model
    options: dict[str, Any] = field(default_factory=dict)
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


class Runner(abc.ABC):
    """An opened engine. `submit` never blocks; `collect` returns requests that have finished."""

    #: the engine's resolved configuration (logged as engine.* params)
    resolved_config: dict[str, Any]
    #: KV-cache capacity in tokens, once known
    kv_cache_tokens: int | None = None
    #: the tokenizer (for dataset prompts and the accuracy adapter) and the vocabulary size
    tokenizer: Any = None
    vocab_size: int = 0

    @abc.abstractmethod
    def submit(self, request: Request) -> None: ...

    @abc.abstractmethod
    def collect(self, timeout: float) -> list[RequestRecord]:
        """Wait up to `timeout` seconds for at least one finished request; return all finished ones."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def refresh_stats(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Update resolved_config / kv_cache_tokens from statistics only known after running."""

    def generate(self, requests: list[Request], timeout: float | None = None) -> list[RequestRecord]:
        """Submit everything at once and wait for all of it (offline mode)."""
        import time

        for r in requests:
            self.submit(r)
        done: dict[str, RequestRecord] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(done) < len(requests):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{len(requests) - len(done)} of {len(requests)} requests unfinished")
            for rec in self.collect(timeout=0.5):
                done[rec.id] = rec
        return [done[r.id] for r in requests]

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Engine(abc.ABC):
    """Base class of engines. Subclasses declare `name`, `version` and `knobs` as class data."""

    name: ClassVar[str]
    #: bump when the way artifacts are built changes, so old cache entries are not reused
    version: ClassVar[str]
    knobs: ClassVar[dict[str, KnobDef]]

    @classmethod
    def default_knobs(cls) -> dict[str, Any]:
        return {k.name: k.default for k in cls.knobs.values()}

    @classmethod
    def check_available(cls) -> str | None:
        """Why this engine cannot run in this environment (a missing package, with the install route)."""
        return None

    #: the pydantic model of the study's `engine_options:` (None: the engine takes no options)
    options_model: ClassVar[type[Any] | None] = None

    @classmethod
    def check_options(
        cls, options: dict[str, Any], study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        """Problems of valid-looking options that only the engine can see (a missing file), as (key path, message)."""
        return []

    #: True for engines that answer a trial in the orchestrating process (`answer`) instead of a worker
    answers_in_process: ClassVar[bool] = False

    @classmethod
    def answer(cls, spec: Any, knobs: dict[str, Any], trial_id: str) -> Any:
        """The trial's TrialResult, for engines with `answers_in_process`."""
        raise NotImplementedError

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        model_dtype: str,
        context: FeasibilityContext | None = None,
    ) -> str | None:
        """Why this combination cannot run on this device, or None. Must be cheap and import-free."""
        return None

    @classmethod
    def build_material(cls, plan: Any, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """What the build key hashes of the build knobs; engines translating knobs hash the translation."""
        return build_knobs

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        """False when the build knobs describe the source model itself (nothing to build or cache)."""
        return True

    @abc.abstractmethod
    def build(self, plan: Any, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """Write the artifact into `out_dir`; return manifest fields worth recording."""

    @abc.abstractmethod
    def open(self, plan: Any, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner: ...
