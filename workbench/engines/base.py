"""The engine contract: `Engine` (declarations, build, open) and `Runner` (an opened engine).

Like Optuna's `BaseSampler`, the base classes are small and their contracts are written here; every
registered engine passes the conformance suite in `tests/engines/conformance.py`.

An engine is a class with declarations readable in the light orchestrating process (`name`,
`version`, `knobs`, `options_model`, feasibility) and two methods the trial worker calls in the
engine's own environment:

- `build(ctx, build_knobs, out_dir)` writes an artifact (a quantized checkpoint, a TensorRT engine)
  that the trial layer caches under the build key; only called when `needs_build(build_knobs)`.
- `open(ctx, artifact, runtime_knobs)` returns a `Runner`: `submit` never blocks, `collect` returns
  finished requests with per-token timestamps (``time.perf_counter()`` seconds in the worker), `stats`
  tells what the trial layer needs for memory, KV and roofline figures, `close` frees everything.

Heavy imports (torch, transformers, tensorrt_llm) happen inside methods, so importing an engine module
costs nothing. Nothing here imports above `workbench.types` and `workbench.knobs`.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from workbench.engines.comparison import Crosscheck
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
    #: the study's `engine_options:`, validated by the engine's `options_model`
    options: dict[str, Any] = field(default_factory=dict)
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


class CrosscheckError(WorkbenchError, RuntimeError):
    """A cross-check cannot run (the vendor tool is missing, its build cannot express the trial) or failed."""


@dataclass(frozen=True)
class CrosscheckInput:
    """What the caller (the command line) hands an engine's cross-check: all engine-neutral."""

    #: the study definition (`workbench.spec.StudySpec`)
    spec: Any
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


@dataclass
class RunnerStats:
    """What the trial layer reads from an opened engine for memory, KV-cache and roofline figures.

    Fields an engine cannot know stay None; the figures that need them are then left out, never 0.
    """

    #: bytes of the weights as loaded (quantized size for quantized models)
    weights_bytes: int | None = None
    #: KV-cache capacity in tokens
    kv_cache_tokens: int | None = None
    #: bytes one token of KV cache takes over all layers
    kv_bytes_per_token: int | None = None
    #: the compute dtype ("bfloat16", ...)
    dtype: str | None = None
    #: the model was already resident (loaded by an earlier point of a grid)
    model_reused: bool = False
    #: the scheduler's policy, as trtllm-bench reports it in `world_info.scheduling_policy`
    scheduling_policy: str | None = None


class EventLoopThread:
    """An asyncio event loop in a daemon thread: the one way every streaming runner (an engine's async
    generator, the HTTP client) keeps real token arrival times while the trial's thread submits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Start `coro` on the loop without waiting (its outcome is the coroutine's own business)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and join its thread; close the loop once the thread has ended."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=timeout)
        if not self.thread.is_alive():
            self.loop.close()


def drain(finished: queue.Queue[RequestRecord], timeout: float) -> list[RequestRecord]:
    """Wait up to `timeout` for one finished record, then take every other one already there (the
    `collect` of runners whose requests finish on an event loop thread)."""
    try:
        out = [finished.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            out.append(finished.get_nowait())
        except queue.Empty:
            return out


@dataclass(frozen=True)
class ServerHandle:
    """How to reach an opened server engine: what lm-eval's own OpenAI client needs for accuracy."""

    base_url: str
    model: str
    #: prompts go as token ids (false: as text the server tokenizes)
    token_prompts: bool
    request_timeout_s: float


class Runner(abc.ABC):
    """An opened engine. `submit` never blocks; `collect` returns requests that have finished.

    What a runner can do beyond that is declared here, with the default of a runner that cannot
    (`counts_errors`, `usage_check`, `server`, `server_metrics`), so the trial layer reads it and
    never probes for attributes."""

    #: the engine's resolved configuration, logged as `engine.*` params (free-form, engine-specific)
    resolved_config: dict[str, Any]
    #: the tokenizer (for dataset prompts and the accuracy adapter) and the vocabulary size
    tokenizer: Any = None
    vocab_size: int = 0
    #: a failed request is a result counted in `error_rate`, not the end of the trial (servers, vLLM)
    counts_errors: bool = False
    #: the server's token counts against the client's (prompt tokens, completion tokens per text
    #: chunk): servers only, None where the tokens are the engine's own
    usage_check: dict[str, int] | None = None

    def server(self) -> ServerHandle | None:
        """The running server of this trial; None for an in-process engine."""
        return None

    def server_metrics(self) -> list[dict[str, Any]]:
        """The server's scraped samples (`t` in the client's clock); none for an in-process engine."""
        return []

    @abc.abstractmethod
    def submit(self, request: Request) -> None: ...

    @abc.abstractmethod
    def collect(self, timeout: float) -> list[RequestRecord]:
        """Wait up to `timeout` seconds for at least one finished request; return all finished ones."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def stats(self) -> RunnerStats:
        """Weights, KV capacity and dtype as the engine resolved them; called after open and again after the run."""

    def refresh_stats(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Update `resolved_config` and `stats()` from statistics only known after running."""

    def generate(self, requests: list[Request], timeout: float | None = None) -> list[RequestRecord]:
        """Submit everything at once and wait for all of it (offline mode)."""
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
    """Base class of engines. Subclasses declare `name`, `version` and `knobs` as class data.

    Every engine declares the four core knobs (`workbench.knobs.CORE_KNOBS`) under their study names;
    what each means in the engine is said in its `KnobDef.help`.
    """

    name: ClassVar[str]
    #: bump when the way artifacts are built changes, so old cache entries are not reused
    version: ClassVar[str]
    knobs: ClassVar[dict[str, KnobDef]]
    #: the pydantic model of the study's `engine_options:` (None: the engine takes no options)
    options_model: ClassVar[type[Any] | None] = None
    #: the Python packages whose versions enter provenance and the build key
    packages: ClassVar[tuple[str, ...]] = ()
    #: how a trial of this engine is measured: "worker" (a worker process) or "replay" (looked up)
    executor: ClassVar[str] = "worker"
    #: the engine vendor's own benchmark that `crosscheck` runs (None: the engine has no cross-check)
    crosscheck_tool: ClassVar[str | None] = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """An engine instance is made only where it runs: without its packages that is a clear failure."""
        missing = type(self).check_available_for(options)
        if missing is not None:
            raise EngineNotInstalled(missing)

    @classmethod
    def default_knobs(cls) -> dict[str, Any]:
        return {k.name: k.default for k in cls.knobs.values()}

    @classmethod
    def check_available(cls) -> str | None:
        """Why this engine cannot run in this environment (a missing package, with the install route)."""
        return None

    @classmethod
    def check_available_for(cls, options: dict[str, Any] | None) -> str | None:
        """`check_available` with the study's `engine_options` (a server program configured by path)."""
        return cls.check_available()

    @classmethod
    def doctor_notes(cls) -> list[str]:
        """Lines `workbench doctor` prints under the engine: which of its set-ups works on this machine."""
        return []

    @classmethod
    def check_options(
        cls, options: dict[str, Any], study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        """Problems of valid-looking options that only the engine can see (a missing file), as (key path, message)."""
        return []

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        """Why this combination cannot run on this device, or None. Must be cheap and import-free."""
        return None

    @classmethod
    def build_material(cls, ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """What the build key hashes of the build knobs; engines translating knobs hash the translation."""
        return build_knobs

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        """False when the build knobs describe the source model itself (nothing to build or cache)."""
        return True

    @classmethod
    def needs_build_for(cls, options: dict[str, Any], build_knobs: dict[str, Any]) -> bool:
        """`needs_build` with the study's engine options (an option may say a build is not needed:
        a backend without one, a choice mapped to a ready checkpoint). Defaults to `needs_build`."""
        return cls.needs_build(build_knobs)

    @classmethod
    def export(cls, knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
        """Write the deployable configuration of these knobs into `out`; return the files written."""
        return []

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

    @abc.abstractmethod
    def build(self, ctx: OpenContext, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """Write the artifact into `out_dir`; return manifest fields worth recording."""

    @abc.abstractmethod
    def open(self, ctx: OpenContext, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner: ...
