"""The study definition as typed models: model, search space, objectives, constraints, budget, accuracy,
trial settings and the runtime (where the trial worker runs). The workload has its own module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from workbench import knobs as K
from workbench.metrics import METRIC_NAMES
from workbench.spec.base import SCALAR, Float, Int, _Strict
from workbench.spec.registry import engine_class
from workbench.spec.workload import WorkloadSpec

#: a study's name becomes part of file names (`<name>.db`, run folders), which are at most 255 bytes
MAX_NAME = 100


# ----------------------------------------------------------------------------------------------- model
class ModelSpec(_Strict):
    """Where the weights come from: a hub id or a local directory (relative to the study file)."""

    id: str | None = Field(None, description="Hugging Face hub id, e.g. meta-llama/Llama-3.1-8B-Instruct")
    path: str | None = Field(None, description="local model directory")
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tokenizer: str | None = Field(None, description="tokenizer id or path, when not the model's own")
    trust_remote_code: bool = False
    load_format: Literal["auto", "dummy"] = Field(
        "auto",
        description="dummy: random weights in the model's shape, for performance-only studies "
        "(throughput and memory do not depend on weight values; accuracy would be meaningless)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.id is None) == (self.path is None):
            raise ValueError("give exactly one of 'id' (a hub id) or 'path' (a local directory)")
        return self

    @property
    def source(self) -> str:
        return self.path if self.path is not None else str(self.id)


# ---------------------------------------------------------------------------------------- search space
class Range(_Strict):
    low: Float
    high: Float
    step: Float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        if self.step is not None and self.log:
            raise ValueError("'step' and 'log' cannot be combined (Optuna does not support it)")
        return self


class Choices(_Strict):
    choices: list[Any] = Field(min_length=1)


def _entry_kind(v: Any) -> str | None:
    """The tag of a search-space entry: of the input when validating, of the model when serializing."""
    if isinstance(v, (Choices, Range)):
        return "choices" if isinstance(v, Choices) else "range"
    if isinstance(v, dict):
        return "choices" if "choices" in v else "range"
    return "fixed" if isinstance(v, SCALAR) else None


#: one search-space entry: {choices: [...]}, {low, high, step, log} or a fixed value. A tagged union, so
#: an error inside a range is located at its knob (search_space.<knob>.<key>) with the range's keys.
SearchEntry = Annotated[
    Annotated[Choices, Tag("choices")] | Annotated[Range, Tag("range")] | Annotated[Any, Tag("fixed")],
    Discriminator(
        _entry_kind,
        custom_error_type="search_entry",
        custom_error_message="a knob is a fixed value, {choices: [...]} or {low: .., high: .., step: .., log: ..}",
    ),
]


# ------------------------------------------------------------------------------- objectives, constraints
def _check_metric(name: str) -> str:
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRIC_NAMES))}")
    return name


class Objective(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"]

    _m = field_validator("metric")(classmethod(lambda cls, v: _check_metric(v)))


class Constraint(_Strict):
    """metric <= max, metric >= min, or metric >= baseline's value - max_drop (an accuracy gate)."""

    metric: str
    max: Float | None = None
    min: Float | None = None
    max_drop_from_baseline: Float | None = Field(None, ge=0)

    _m = field_validator("metric")(classmethod(lambda cls, v: _check_metric(v)))

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        given = [k for k in ("max", "min", "max_drop_from_baseline") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'max', 'min' or 'max_drop_from_baseline'")
        return self


class SloSpec(_Strict):
    """Service targets: a request meets them when its TTFT and TPOT are within both (goodput counts those);
    a load meets them when the p95 of each is within its target."""

    ttft_ms_p95: float = Field(200.0, gt=0)
    tpot_ms_p95: float = Field(50.0, gt=0)


class CostSpec(_Strict):
    """What the GPUs cost, for `usd_per_m_output_tokens` (price x GPUs of a trial x the time per token)."""

    usd_per_gpu_hour: Float = Field(gt=0, le=1e4, description="the price of one GPU hour (list or your own)")


class SamplerSpec(_Strict):
    name: Literal["tpe", "nsga2", "gp", "random", "grid"] = "tpe"
    seed: Int | None = 0
    options: dict[str, Any] = Field(default_factory=dict)


class PrunerSpec(_Strict):
    """Optuna's pruner, stopping a trial that cannot beat the others from the values it reports as it
    goes (each load of a sweep, each probe of a load search); `options` are the pruner's own keywords."""

    name: Literal[
        "none", "median", "percentile", "successive_halving", "hyperband", "wilcoxon", "threshold"
    ] = "none"
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(_Strict):
    n_trials: Int = Field(
        20, ge=1, le=100_000, description="finished (complete or pruned) trials the study aims for"
    )
    timeout_s: Float | None = Field(None, gt=0, description="stop starting new trials after this long")


class GateSpec(_Strict):
    """TensorRT-LLM's one-tailed test for "accuracy >= baseline - max_drop" (its alpha, beta, sigma)."""

    alpha: Float = Field(0.05, gt=0, lt=0.5)
    beta: Float = Field(0.2, gt=0, lt=0.5)
    sigma: Float = Field(50.0, gt=0, description="worst-case standard deviation of a 0-100 Bernoulli score")
    sequential: bool = Field(True, description="evaluate in chunks and stop once the gate is decided")
    chunk: Int = Field(100, ge=1, description="samples per look when sequential")


class AccuracySpec(_Strict):
    """GSM8K through lm-eval on the trial's engine; the defaults are TensorRT-LLM's protocol."""

    task: Literal["gsm8k", "gsm8k_cot", "gsm8k_cot_zeroshot", "gsm8k_cot_llama"] = "gsm8k"
    data_path: str | None = Field(None, description="folder with train.jsonl and test.jsonl; unset: the hub")
    limit: Int | None = Field(None, ge=1, description="the first N test questions (all 1319 when unset)")
    num_fewshot: Int | None = Field(None, ge=0, description="unset: the task's own (5 for gsm8k)")
    fewshot_seed: Int = Field(0, description="TensorRT-LLM's references use 0 (lm-eval's default is 1234)")
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    max_gen_toks: Int = Field(256, ge=1)
    max_input_len: Int = Field(4096, ge=1, description="prompts are left-truncated to this many tokens")
    reuse: Literal["build_key", "never", "check"] = Field(
        "build_key",
        description="build_key: trials sharing a build key (same weights and quantization) share one "
        "measurement; never: measure every trial; check: measure again and log the difference",
    )
    gate: GateSpec = GateSpec()


class TrialSettings(_Strict):
    timeout_s: Float = Field(1800, gt=0, description="wall-clock limit of one trial's worker process")
    memory_limit_gb: Float | None = Field(
        None, gt=0, description="kill a worker whose memory (RSS) exceeds this; recorded as out of memory"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_kv_budget_gb: Float = Field(
        1.0, gt=0, description="on CPU the KV fraction is a fraction of this budget, so runs are reproducible"
    )
    threads: Int | None = Field(None, ge=1, description="torch CPU threads in the worker")
    cache_dir: str | None = Field(None, description="engine artifact cache; default .workbench/cache")


class ContainerSpec(_Strict):
    """Run the trial worker inside a container image that holds the engine's environment."""

    image: str = Field(description="e.g. nvcr.io/nvidia/tensorrt-llm/release:1.2.1")
    runtime: Literal["docker", "podman", "apptainer"] = "docker"
    python: str = Field("python3", description="the interpreter inside the image")
    gpus: bool = Field(True, description="pass the trial's GPU into the container")
    args: list[str] = Field(default_factory=list, description="extra arguments for `<runtime> run`")


class RuntimeSpec(_Strict):
    """Where the trial worker runs: this interpreter (default), another one, or a container.

    The engine's packages (torch, transformers, tensorrt_llm, ...) live there; the worker needs only
    the standard library, pydantic, PyYAML and the workbench source, which the launcher provides.
    """

    python: str | None = Field(
        None, description="another environment's interpreter, e.g. /opt/trtllm/bin/python"
    )
    container: ContainerSpec | None = None
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables for the worker"
    )

    @model_validator(mode="after")
    def _one_launcher(self) -> RuntimeSpec:
        if self.python is not None and self.container is not None:
            raise ValueError("runtime: give either `python` or `container`, not both")
        return self


class StudySpec(_Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=MAX_NAME,
        description="names the Optuna study, the MLflow experiment and files (letters, digits, _ . -)",
    )
    description: str = ""
    model: ModelSpec
    engine: str
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="engine settings that are not searched (see `workbench engines`)"
    )
    _options: Any = PrivateAttr(default=None)
    search_space: dict[str, SearchEntry] = Field(min_length=1)
    baseline: dict[str, Any] = Field(
        default_factory=dict, description="knob values of the baseline; unset ones are the engine's defaults"
    )
    workload: WorkloadSpec = WorkloadSpec()
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="output_tok_s", direction="maximize")], min_length=1
    )
    constraints: list[Constraint] = Field(default_factory=list)
    slo: SloSpec | None = Field(
        None, description="service targets: goodput and the highest load meeting them"
    )
    cost: CostSpec | None = Field(None, description="GPU price: adds usd_per_m_output_tokens to every trial")
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    budget: Budget = Budget()
    accuracy: AccuracySpec | None = None
    trial: TrialSettings = TrialSettings()
    runtime: RuntimeSpec = RuntimeSpec()

    # where the file was read from; relative paths in it are resolved against its folder
    source_path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _no_accuracy_on_random_weights(self) -> StudySpec:
        if self.accuracy is not None and self.model.load_format == "dummy":
            raise ValueError(
                "model.load_format is dummy (random weights), so GSM8K accuracy would be meaningless: "
                "remove the `accuracy:` section or use load_format: auto"
            )
        return self

    @model_validator(mode="after")
    def _accuracy_declared(self) -> StudySpec:
        used = [x.metric for x in [*self.objectives, *self.constraints] if x.metric.startswith("gsm8k")]
        if used and self.accuracy is None:
            raise ValueError(
                f"{used[0]} is used in objectives/constraints: add an `accuracy:` section "
                "(for example `accuracy: {data_path: ../data/gsm8k}`)"
            )
        return self

    @model_validator(mode="after")
    def _search_has_targets(self) -> StudySpec:
        sweep = self.workload.sweep
        if sweep is not None and sweep.search is not None and self.slo is None:
            raise ValueError(
                "workload.sweep.search looks for the highest load meeting the service targets: add an "
                "`slo:` section (for example `slo: {ttft_ms_p95: 200, tpot_ms_p95: 50}`)"
            )
        return self

    @model_validator(mode="after")
    def _pruner_has_one_objective(self) -> StudySpec:
        if self.pruner.name != "none" and len(self.objectives) != 1:
            raise ValueError(
                "pruner: Optuna prunes single-objective studies only (trial.report); this study has "
                f"{len(self.objectives)} objectives: remove `pruner:` or keep one objective"
            )
        return self

    def resolve_path(self, p: str) -> Path:
        path = Path(p).expanduser()
        if not path.is_absolute() and self.source_path is not None:
            path = self.source_path.parent / path
        return path.resolve()

    @property
    def model_source(self) -> str:
        """The string handed to from_pretrained: an absolute local path or the hub id."""
        return str(self.resolve_path(self.model.path)) if self.model.path is not None else str(self.model.id)

    def engine_knobs(self) -> dict[str, K.KnobDef]:
        return engine_class(self.engine).knobs

    def options(self) -> Any:
        """`engine_options` as the engine's options model (`Engine.parse_options`), validated once per
        definition: export, cross-check, doctor and feasibility read this one object."""
        if self._options is None or self._options[0] != (self.engine, self.engine_options):
            # keyed by what it was made from: a copy with other options (model_copy) parses its own
            parsed = engine_class(self.engine).parse_options(self.engine_options)
            self._options = ((self.engine, dict(self.engine_options)), parsed)
        return self._options[1]

    def fixed_knobs(self) -> dict[str, Any]:
        return {k: v for k, v in self.search_space.items() if not isinstance(v, (Range, Choices))}
