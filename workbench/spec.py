"""Study definitions: YAML files validated into typed models, with errors that point at the mistake.

A study file names the model, the engine, the search space, the workload, and the objectives and
constraints the search is judged by. Every mistake is reported in one message naming the file, the
line, the key path, the bad value and what is allowed; unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench import knobs as K
from workbench.metrics import METRIC_NAMES

SCALAR = (bool, int, float, str)


class SpecError(ValueError):
    """A study definition is wrong. The message lists every problem with its location."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        head = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the study definition"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    low: float
    high: float
    step: float | None = None
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


def _search_entry(v: Any) -> Any:
    if isinstance(v, dict):
        if "choices" in v:
            return Choices.model_validate(v)
        return Range.model_validate(v)
    if isinstance(v, SCALAR):
        return v
    raise ValueError(
        "a knob is a fixed value, {choices: [...]} or {low: .., high: .., step: .., log: ..}, "
        f"not {type(v).__name__}"
    )


# --------------------------------------------------------------------------------------------- workload
class FixedLen(_Strict):
    dist: Literal["fixed"]
    value: int = Field(ge=1)


class UniformLen(_Strict):
    dist: Literal["uniform"]
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> UniformLen:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class NormalLen(_Strict):
    """trtllm-bench's token-norm-dist: a normal distribution, clipped to [min, max]."""

    dist: Literal["normal"]
    mean: float = Field(gt=0)
    std: float = Field(ge=0)
    min: int = Field(1, ge=1)
    max: int | None = None


LengthDist = Annotated[FixedLen | UniformLen | NormalLen, Field(discriminator="dist")]


def _len_shorthand(v: Any) -> Any:
    return {"dist": "fixed", "value": v} if isinstance(v, int) and not isinstance(v, bool) else v


class DatasetSpec(_Strict):
    """Prompts from a JSON Lines file instead of random tokens.

    format "trtllm-bench" reads trtllm-bench's dataset lines (prompt or input_ids, output_tokens);
    format "text" reads one text field (e.g. GSM8K's "question").
    """

    path: str
    format: Literal["trtllm-bench", "text"] = "trtllm-bench"
    field: str = "prompt"
    max_input_len: int | None = Field(None, ge=1, description="left-truncate longer prompts")


class Burst(_Strict):
    """Every request arrives at once: offline maximum throughput (trtllm-bench's default)."""

    mode: Literal["burst"]


class Rate(_Strict):
    """Poisson arrivals at a mean rate in requests per second (seeded, so reproducible)."""

    mode: Literal["rate"]
    rate: float = Field(gt=0)


class Concurrency(_Strict):
    """A fixed number of requests in flight (trtllm-bench --concurrency)."""

    mode: Literal["concurrency"]
    concurrency: int = Field(ge=1)


Arrival = Annotated[Burst | Rate | Concurrency, Field(discriminator="mode")]


class WorkloadSpec(_Strict):
    num_requests: int = Field(64, ge=1)
    warmup_requests: int = Field(4, ge=0)
    input_len: LengthDist = FixedLen(dist="fixed", value=128)
    output_len: LengthDist = FixedLen(dist="fixed", value=128)
    ignore_eos: bool = Field(
        True, description="generate exactly output_len tokens, as trtllm-bench --eos_id -1"
    )
    dataset: DatasetSpec | None = None
    arrival: Arrival = Burst(mode="burst")
    seed: int = 0
    repeats: int = Field(1, ge=1, description="measured runs per trial; the report gives mean and CV")

    @field_validator("input_len", "output_len", mode="before")
    @classmethod
    def _lens(cls, v: Any) -> Any:
        return _len_shorthand(v)

    @field_validator("arrival", mode="before")
    @classmethod
    def _arrival(cls, v: Any) -> Any:
        return {"mode": v} if isinstance(v, str) else v


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
    max: float | None = None
    min: float | None = None
    max_drop_from_baseline: float | None = Field(None, ge=0)

    _m = field_validator("metric")(classmethod(lambda cls, v: _check_metric(v)))

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        given = [k for k in ("max", "min", "max_drop_from_baseline") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'max', 'min' or 'max_drop_from_baseline'")
        return self


class SamplerSpec(_Strict):
    name: Literal["tpe", "nsga2", "gp", "random", "grid"] = "tpe"
    seed: int | None = 0
    options: dict[str, Any] = Field(default_factory=dict)


class Budget(_Strict):
    n_trials: int = Field(20, ge=1, description="finished (complete or pruned) trials the study aims for")
    timeout_s: float | None = Field(None, gt=0, description="stop starting new trials after this long")


class GateSpec(_Strict):
    """TensorRT-LLM's one-tailed test for "accuracy >= baseline - max_drop" (its alpha, beta, sigma)."""

    alpha: float = Field(0.05, gt=0, lt=0.5)
    beta: float = Field(0.2, gt=0, lt=0.5)
    sigma: float = Field(50.0, gt=0, description="worst-case standard deviation of a 0-100 Bernoulli score")
    sequential: bool = Field(True, description="evaluate in chunks and stop once the gate is decided")
    chunk: int = Field(100, ge=1, description="samples per look when sequential")


class AccuracySpec(_Strict):
    """GSM8K through lm-eval on the trial's engine; the defaults are TensorRT-LLM's protocol."""

    task: Literal["gsm8k", "gsm8k_cot", "gsm8k_cot_zeroshot", "gsm8k_cot_llama"] = "gsm8k"
    data_path: str | None = Field(None, description="folder with train.jsonl and test.jsonl; unset: the hub")
    limit: int | None = Field(None, ge=1, description="the first N test questions (all 1319 when unset)")
    num_fewshot: int | None = Field(None, ge=0, description="unset: the task's own (5 for gsm8k)")
    fewshot_seed: int = Field(0, description="TensorRT-LLM's references use 0 (lm-eval's default is 1234)")
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    max_gen_toks: int = Field(256, ge=1)
    max_input_len: int = Field(4096, ge=1, description="prompts are left-truncated to this many tokens")
    reuse: Literal["build_key", "never", "check"] = Field(
        "build_key",
        description="build_key: trials sharing a build key (same weights and quantization) share one "
        "measurement; never: measure every trial; check: measure again and log the difference",
    )
    gate: GateSpec = GateSpec()


class TrialSettings(_Strict):
    timeout_s: float = Field(1800, gt=0, description="wall-clock limit of one trial's worker process")
    memory_limit_gb: float | None = Field(
        None, gt=0, description="kill a worker whose memory (RSS) exceeds this; recorded as out of memory"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_kv_budget_gb: float = Field(
        1.0, gt=0, description="on CPU the KV fraction is a fraction of this budget, so runs are reproducible"
    )
    threads: int | None = Field(None, ge=1, description="torch CPU threads in the worker")
    cache_dir: str | None = Field(None, description="engine artifact cache; default .workbench/cache")


class StudySpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    model: ModelSpec
    engine: str
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="engine settings that are not searched (see `workbench engines`)"
    )
    search_space: dict[str, Any] = Field(min_length=1)
    baseline: dict[str, Any] = Field(
        default_factory=dict, description="knob values of the baseline; unset ones are the engine's defaults"
    )
    workload: WorkloadSpec = WorkloadSpec()
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="output_tok_s", direction="maximize")], min_length=1
    )
    constraints: list[Constraint] = Field(default_factory=list)
    sampler: SamplerSpec = SamplerSpec()
    budget: Budget = Budget()
    accuracy: AccuracySpec | None = None
    trial: TrialSettings = TrialSettings()

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

    @field_validator("search_space")
    @classmethod
    def _entries(cls, v: dict[str, Any]) -> dict[str, Any]:
        return {k: _search_entry(e) for k, e in v.items()}

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
        from workbench.engines import get_engine_class

        return get_engine_class(self.engine).knobs

    def baseline_knobs(self) -> dict[str, Any]:
        """The engine's defaults with the study's baseline overrides on top."""
        from workbench.engines import get_engine_class

        return {**get_engine_class(self.engine).default_knobs(), **self.baseline}

    def fixed_knobs(self) -> dict[str, Any]:
        return {k: v for k, v in self.search_space.items() if not isinstance(v, (Range, Choices))}


# ----------------------------------------------------------------------------------------------- loading
def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate a study file. `overrides` maps dotted keys (workload.num_requests) to values."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(source, [f"cannot read the file: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(source, [f"{where}not valid YAML ({getattr(e, 'problem', e)})"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the file must hold a mapping (key: value pairs) at the top level"])
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return validate_spec(data, source=source, source_path=path.resolve(), yaml_root=root)


def validate_spec(
    data: dict[str, Any], source: str = "<study>", source_path: Path | None = None, yaml_root: Any = None
) -> StudySpec:
    """Validate a study given as a dict (what notebooks build in code)."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(source, [_describe(err, yaml_root, data) for err in e.errors()]) from None
    spec.source_path = source_path
    tok = spec.model.tokenizer
    if tok and source_path is not None and tok.startswith(("./", "../")):  # a local folder beside the study
        spec.model.tokenizer = str((source_path.parent / tok).resolve())
    problems = _check_against_engine(spec, yaml_root)
    if problems:
        raise SpecError(source, problems)
    return spec


def _check_against_engine(spec: StudySpec, root: Any) -> list[str]:
    """Knob names and values must be ones the engine declares."""
    from workbench.engines import engine_names, get_engine_class

    if spec.engine not in engine_names():
        return [_at(root, ("engine",), f"got {spec.engine!r}; allowed engines: {', '.join(engine_names())}")]
    engine_cls = get_engine_class(spec.engine)
    defs = engine_cls.knobs
    problems = _check_engine_options(spec, engine_cls, root)
    for section in ("search_space", "baseline"):
        for name, entry in getattr(spec, section).items():
            loc: tuple[Any, ...] = (section, name)
            if name not in defs:
                problems.append(
                    _at(
                        root,
                        loc,
                        f"unknown knob for engine {spec.engine!r}; allowed knobs: {', '.join(defs)}",
                    )
                )
                continue
            d = defs[name]
            if isinstance(entry, Choices):
                for i, c in enumerate(entry.choices):
                    try:
                        d.check(c)
                    except ValueError as e:
                        problems.append(_at(root, (*loc, "choices", i), str(e)))
            elif isinstance(entry, Range):
                if d.type not in ("int", "float"):
                    problems.append(
                        _at(root, loc, f"{name} is {d.type}: give {{choices: [...]}}, not a range")
                    )
                    continue
                for bound in ("low", "high"):
                    try:
                        d.check(getattr(entry, bound))
                    except ValueError as e:
                        problems.append(_at(root, (*loc, bound), str(e)))
            else:
                try:
                    d.check(entry)
                except ValueError as e:
                    problems.append(_at(root, loc, str(e)))
    return problems


def _check_engine_options(spec: StudySpec, engine_cls: Any, root: Any) -> list[str]:
    model = engine_cls.options_model
    if model is None:
        if spec.engine_options:
            return [_at(root, ("engine_options",), f"engine {spec.engine!r} takes no engine_options")]
        return []
    try:
        model.model_validate(spec.engine_options)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = ("engine_options", *err["loc"])
            if err["type"] == "extra_forbidden":
                what = f"unknown key; allowed keys: {', '.join(model.model_fields)}"
            else:
                value = err.get("input")
                msg = err["msg"].removeprefix("Value error, ")
                what = f"got {value!r}; {msg}" if isinstance(value, SCALAR) or value is None else msg
            out.append(_at(root, loc, what))
        return out
    study_dir = str(spec.source_path.parent) if spec.source_path else None
    return [
        _at(root, ("engine_options", *loc), msg)
        for loc, msg in engine_cls.check_options(spec.engine_options, study_dir)
    ]


def parse_knob_assignments(spec: StudySpec, assignments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set` items into (knob values, dotted spec overrides); knob values are checked."""
    defs = spec.engine_knobs()
    knob_values: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", [f"{item!r}: expected KEY=VALUE, e.g. max_batch_size=8"])
        value = yaml.safe_load(raw) if raw.strip() else raw
        if "." in key:
            overrides[key] = value
            continue
        if key not in defs:
            raise SpecError(
                "--set", [f"{key}: unknown knob for engine {spec.engine!r}; allowed: {', '.join(defs)}"]
            )
        try:
            knob_values[key] = defs[key].check(value)
        except ValueError as e:
            raise SpecError("--set", [str(e)]) from None
    return knob_values, overrides


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------- error messages
def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    node = root
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == part), None)
            if nxt is None:
                break
            line = nxt[0].start_mark.line + 1
            node = nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _at(root: Any, loc: tuple[Any, ...], what: str) -> str:
    line = _line_of(root, loc) if root is not None else None
    return f"{'line ' + str(line) + ', ' if line else ''}{_loc_str(loc)}: {what}"


def _clean_loc(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Any, ...]:
    """Drop the union and validator tags pydantic puts into locations: keep only real keys of the input."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if (
            isinstance(node, dict)
            and part in node
            or isinstance(node, list)
            and isinstance(part, int)
            and part < len(node)
        ):
            node = node[part]
        elif missing and i == len(loc) - 1 and isinstance(node, dict):
            pass  # a missing key: not in the input, but it is what the user must add
        else:
            continue
        out.append(part)
    return tuple(out)


def _describe(err: dict[str, Any], root: Any, data: Any) -> str:
    kind = err["type"]
    loc = _clean_loc(tuple(err["loc"]), data, missing=kind == "missing")
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        what = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    elif kind == "missing":
        what = "required key is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        what = f"got {value!r}; {msg}" if isinstance(value, SCALAR) or value is None else msg
    return _at(root, loc, what)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = StudySpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        model = _first_model(ann)
        if model is None:
            return []
    return [k for k in model.model_fields if k != "source_path"]


def _first_model(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in typing.get_args(ann):
        m = _first_model(a)
        if m is not None:
            return m
    return None
