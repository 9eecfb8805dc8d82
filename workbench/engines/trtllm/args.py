"""Study knobs -> TensorRT-LLM 1.2.x LLM-API arguments: pure functions, no tensorrt_llm import.

Everything the `trtllm` engine passes to TensorRT-LLM, everything `workbench export` writes and every
trtllm-bench flag `workbench crosscheck` uses comes from here, as plain data (enums by member name).
The conformance tests check this data against the recorded 1.2.x API snapshot (trtllm_api/), over
the whole search space, so a name or type that 1.2.x does not accept fails CI, not a GPU run.

Build-time vs runtime follows TensorRT-LLM: BuildConfig, PluginConfig, QuantConfig, CalibConfig,
dtype, tensor parallelism and load_format are baked into the engine (they form the build key);
KvCacheConfig, SchedulerConfig, chunked prefill, the runtime batch and token caps and the extended
runtime knobs are read when a saved engine is opened, so changing them never rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench import estimate
from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.knobs import KnobDef


@dataclass(frozen=True)
class Quantization:
    """A study quantization name: TensorRT-LLM's QuantAlgo pair and what the GPU must support."""

    quant_algo: str | None
    kv_cache_quant_algo: str | None
    weight_format: str  # for the memory estimate (workbench.estimate.WEIGHT_BYTES)
    min_cc: tuple[int, int] = (7, 0)
    help: str = ""

    @property
    def needs_calibration(self) -> bool:
        """TensorRT-LLM calibrates every algorithm but W8A16, W4A16, FP8_PER_CHANNEL_PER_TOKEN, and any KV quantization."""
        no_calib = (None, "W8A16", "W4A16", "FP8_PER_CHANNEL_PER_TOKEN")
        return self.quant_algo not in no_calib or self.kv_cache_quant_algo is not None


HOPPER_FP8 = (8, 9)
BLACKWELL = (10, 0)

QUANTIZATIONS: dict[str, Quantization] = {
    "none": Quantization(None, None, "bf16", help="the model dtype (bf16/fp16)"),
    "fp8": Quantization("FP8", None, "fp8", HOPPER_FP8, "FP8 weights and activations (per tensor)"),
    "fp8_kv_fp8": Quantization("FP8", "FP8", "fp8", HOPPER_FP8, "FP8 weights, activations and KV cache"),
    "fp8_per_channel_per_token": Quantization(
        "FP8_PER_CHANNEL_PER_TOKEN", None, "fp8", HOPPER_FP8, "FP8 row-wise (no calibration)"
    ),
    "kv_fp8": Quantization(None, "FP8", "bf16", HOPPER_FP8, "model-dtype weights, FP8 KV cache"),
    "kv_int8": Quantization(None, "INT8", "bf16", help="model-dtype weights, INT8 KV cache"),
    "int8_sq_per_channel": Quantization(
        "W8A8_SQ_PER_CHANNEL", None, "int8", help="SmoothQuant INT8 (ModelOpt)"
    ),
    "int8_sq_per_tensor_plugin": Quantization("W8A8_SQ_PER_TENSOR_PLUGIN", None, "int8"),
    "int8_sq_per_channel_per_token_plugin": Quantization(
        "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN", None, "int8"
    ),
    "int8_sq_per_channel_per_tensor_plugin": Quantization(
        "W8A8_SQ_PER_CHANNEL_PER_TENSOR_PLUGIN", None, "int8"
    ),
    "int8_sq_per_tensor_per_token_plugin": Quantization("W8A8_SQ_PER_TENSOR_PER_TOKEN_PLUGIN", None, "int8"),
    "w8a16": Quantization("W8A16", None, "int8", help="INT8 weight-only"),
    "w8a16_kv_int8": Quantization("W8A16", "INT8", "int8", help="INT8 weight-only, INT8 KV cache"),
    "w4a16": Quantization("W4A16", None, "int4", help="INT4 weight-only"),
    "w4a16_awq": Quantization("W4A16_AWQ", None, "int4", help="INT4 AWQ weight-only (ModelOpt)"),
    "w4a16_awq_kv_int8": Quantization("W4A16_AWQ", "INT8", "int4", help="INT4 AWQ, INT8 KV cache"),
    "w4a8_awq": Quantization("W4A8_AWQ", None, "int4", HOPPER_FP8, "INT4 AWQ weights, FP8 activations"),
    "nvfp4": Quantization("NVFP4", None, "fp4", BLACKWELL, "NVFP4 weights and activations"),
    "nvfp4_kv_fp8": Quantization("NVFP4", "FP8", "fp4", BLACKWELL, "NVFP4 with an FP8 KV cache"),
}

SCHEDULER_POLICIES = {"guaranteed_no_evict": "GUARANTEED_NO_EVICT", "max_utilization": "MAX_UTILIZATION"}
CHUNKING_POLICIES = {
    "first_come_first_served": "FIRST_COME_FIRST_SERVED",
    "equal_progress": "EQUAL_PROGRESS",
}
GEMM_PLUGIN = ("recommended", "auto", "none")

KNOBS: list[KnobDef] = [
    # -- the four core knobs
    KnobDef(
        "max_batch_size",
        "int",
        False,
        2048,
        "runtime cap on requests per step (<= engine_max_batch_size)",
        low=1,
    ),
    KnobDef(
        "kv_cache_fraction",
        "float",
        False,
        0.9,
        "KvCacheConfig.free_gpu_memory_fraction: share of the memory free after the engine loads",
        low=0.0,
        high=0.99,
        low_exclusive=True,
    ),
    KnobDef(
        "max_num_tokens",
        "int",
        False,
        8192,
        "runtime token budget per step = chunk size with chunked prefill (<= engine_max_num_tokens)",
        low=1,
    ),
    KnobDef(
        "quantization",
        "categorical",
        True,
        "none",
        "QuantConfig quant_algo / kv_cache_quant_algo pair",
        choices=tuple(QUANTIZATIONS),
    ),
    # -- build-time
    KnobDef("engine_max_batch_size", "int", True, 2048, "BuildConfig.max_batch_size", low=1),
    KnobDef("engine_max_num_tokens", "int", True, 8192, "BuildConfig.max_num_tokens", low=1),
    KnobDef(
        "max_input_len", "int", True, 4096, "BuildConfig.max_input_len (5-shot GSM8K needs ~1000)", low=1
    ),
    KnobDef("max_seq_len", "int", True, 4352, "BuildConfig.max_seq_len (prompt + output)", low=2),
    KnobDef("multiple_profiles", "bool", True, True, "PluginConfig.multiple_profiles (tuning guide: on)"),
    KnobDef(
        "tokens_per_block",
        "categorical",
        True,
        32,
        "PluginConfig.tokens_per_block (KV block size)",
        choices=(8, 16, 32, 64, 128),
    ),
    KnobDef(
        "gemm_plugin",
        "categorical",
        True,
        "recommended",
        "recommended: 'auto' for bf16/fp16 and INT weights, off for FP8 (tuning guide); auto; none",
        choices=GEMM_PLUGIN,
    ),
    KnobDef("use_fp8_context_fmha", "bool", True, True, "FP8 context attention (FP8, W4A8_AWQ, NVFP4 only)"),
    # -- runtime
    KnobDef(
        "chunked_prefill", "bool", False, False, "enable_chunked_prefill (context chunks of max_num_tokens)"
    ),
    KnobDef("enable_block_reuse", "bool", False, True, "KvCacheConfig.enable_block_reuse (prefix reuse)"),
    KnobDef(
        "scheduler_policy",
        "categorical",
        False,
        "guaranteed_no_evict",
        "SchedulerConfig.capacity_scheduler_policy",
        choices=tuple(SCHEDULER_POLICIES),
    ),
    KnobDef(
        "context_chunking_policy",
        "categorical",
        False,
        "first_come_first_served",
        "SchedulerConfig.context_chunking_policy (with chunked prefill)",
        choices=tuple(CHUNKING_POLICIES),
    ),
    KnobDef("cuda_graph_mode", "bool", False, False, "ExtendedRuntimePerfKnobConfig.cuda_graph_mode"),
    KnobDef("multi_block_mode", "bool", False, True, "ExtendedRuntimePerfKnobConfig.multi_block_mode"),
]

KNOBS_BY_NAME = {k.name: k for k in KNOBS}


class TrtllmOptions(BaseModel):
    """`engine_options:` of a study using the trtllm engine (settings that are not searched)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (build-time)")
    calib_dataset: str | None = Field(
        None,
        description="calibration data: a local dataset folder (train split, 'text' column) or a hub name; "
        "unset: TensorRT-LLM's default cnn_dailymail from the hub",
    )
    calib_batches: int = Field(512, ge=1)
    calib_batch_size: int = Field(1, ge=1)
    calib_max_seq_length: int = Field(512, ge=1)
    calib_random_seed: int = 1234
    fast_build: bool = False
    memory_settle_timeout_s: float = Field(
        60.0, gt=0, description="after shutdown, wait this long for GPU memory to return to the baseline"
    )
    runtime_overhead_gb: float = Field(
        1.5, ge=0, description="CUDA context + TensorRT runtime, for the memory estimate"
    )
    trtllm_bench: str = Field("trtllm-bench", description="the trtllm-bench executable, for crosscheck")


def quantization(knobs: dict[str, Any]) -> Quantization:
    return QUANTIZATIONS[knobs["quantization"]]


def _dtype_bytes(dtype: str) -> float:
    return 4.0 if dtype == "float32" else 2.0


def _gemm_plugin(knobs: dict[str, Any], model_dtype: str) -> str | None:
    choice = knobs["gemm_plugin"]
    if choice == "none":
        return None
    if choice == "auto":
        return "auto"
    q = quantization(knobs)
    fp8 = q.quant_algo is not None and q.quant_algo.startswith(("FP8", "NVFP4"))
    return None if fp8 else "auto"


# ------------------------------------------------------------------------------------- build-time
def build_args(
    knobs: dict[str, Any], options: dict[str, Any], model_dtype: str, load_format: str
) -> dict[str, Any]:
    """The build-time LLM arguments (everything but model/tokenizer paths): these form the build key."""
    opts = TrtllmOptions.model_validate(options)
    q = quantization(knobs)
    plugin: dict[str, Any] = {
        "multiple_profiles": bool(knobs["multiple_profiles"]),
        "use_paged_context_fmha": True,  # needed for chunked prefill and KV reuse
        "use_fp8_context_fmha": bool(knobs["use_fp8_context_fmha"]),
        "tokens_per_block": int(knobs["tokens_per_block"]),
        "gemm_plugin": _gemm_plugin(knobs, model_dtype),
    }
    build_config: dict[str, Any] = {
        "max_batch_size": int(knobs["engine_max_batch_size"]),
        "max_num_tokens": int(knobs["engine_max_num_tokens"]),
        "max_input_len": int(knobs["max_input_len"]),
        "max_seq_len": int(knobs["max_seq_len"]),
        "max_beam_width": 1,
        "plugin_config": plugin,
    }
    args: dict[str, Any] = {
        "dtype": model_dtype,
        "tensor_parallel_size": opts.tensor_parallel_size,
        "load_format": load_format,
        "fast_build": opts.fast_build,
        "build_config": build_config,
        "quant_config": {"quant_algo": q.quant_algo, "kv_cache_quant_algo": q.kv_cache_quant_algo},
    }
    if q.needs_calibration:
        calib: dict[str, Any] = {
            "calib_batches": opts.calib_batches,
            "calib_batch_size": opts.calib_batch_size,
            "calib_max_seq_length": opts.calib_max_seq_length,
            "random_seed": opts.calib_random_seed,
        }
        if opts.calib_dataset is not None:
            calib["calib_dataset"] = opts.calib_dataset
        args["calib_config"] = calib
    return args


# ---------------------------------------------------------------------------------------- runtime
def runtime_args(knobs: dict[str, Any]) -> dict[str, Any]:
    """The LLM arguments read when a saved engine is opened (never a rebuild)."""
    return {
        "max_batch_size": int(knobs["max_batch_size"]),
        "max_num_tokens": int(knobs["max_num_tokens"]),
        "enable_chunked_prefill": bool(knobs["chunked_prefill"]),
        "kv_cache_config": {
            "free_gpu_memory_fraction": float(knobs["kv_cache_fraction"]),
            "enable_block_reuse": bool(knobs["enable_block_reuse"]),
        },
        "scheduler_config": {
            "capacity_scheduler_policy": SCHEDULER_POLICIES[knobs["scheduler_policy"]],
            "context_chunking_policy": CHUNKING_POLICIES[knobs["context_chunking_policy"]],
        },
        "extended_runtime_perf_knob_config": {
            "cuda_graph_mode": bool(knobs["cuda_graph_mode"]),
            "multi_block_mode": bool(knobs["multi_block_mode"]),
        },
    }


def sampling_args(
    max_tokens: int,
    ignore_eos: bool,
    stop: list[str] | None = None,
    end_id: int | None = None,
    detokenize: bool = True,
) -> dict[str, Any]:
    """SamplingParams keywords: greedy (no temperature/top_k/top_p), max_tokens always explicit (the
    default is 32); stop strings need detokenization, benchmark requests skip it like trtllm-bench."""
    args: dict[str, Any] = {
        "max_tokens": int(max_tokens),
        "ignore_eos": bool(ignore_eos),
        "detokenize": bool(detokenize or stop),
    }
    if stop:
        args["stop"] = list(stop)
    if end_id is not None:
        args["end_id"] = int(end_id)
    return args


def extra_llm_api_options(
    knobs: dict[str, Any], options: dict[str, Any], model_dtype: str, load_format: str
) -> dict[str, Any]:
    """The `--extra_llm_api_options` YAML of trtllm-serve / trtllm-bench: runtime knobs, plus the build
    sections so that serving from the Hugging Face checkpoint builds the same engine."""
    b = build_args(knobs, options, model_dtype, load_format)
    out = runtime_args(knobs)
    for k in ("build_config", "quant_config", "calib_config"):
        if k in b:
            out[k] = b[k]
    if b["tensor_parallel_size"] != 1:
        out["tensor_parallel_size"] = b["tensor_parallel_size"]
    return out


# --------------------------------------------------------------------------------- to API objects
def llm_kwargs(args: dict[str, Any], api: Any) -> dict[str, Any]:
    """Turn translated arguments into the objects the LLM constructor takes. `api` holds the classes
    (tensorrt_llm's own in the engine, the snapshot's strict stand-ins in tests)."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        if k == "build_config":
            fields = {f: x for f, x in v.items() if f != "plugin_config"}
            bc = api.BuildConfig(**fields)
            for f, x in v.get("plugin_config", {}).items():  # as trtllm-bench does: set on the PluginConfig
                setattr(bc.plugin_config, f, x)
            out[k] = bc
        elif k == "quant_config":
            out[k] = api.QuantConfig(
                quant_algo=api.QuantAlgo[v["quant_algo"]] if v.get("quant_algo") else None,
                kv_cache_quant_algo=api.QuantAlgo[v["kv_cache_quant_algo"]]
                if v.get("kv_cache_quant_algo")
                else None,
            )
        elif k == "calib_config":
            out[k] = api.CalibConfig(**v)
        elif k == "kv_cache_config":
            out[k] = api.KvCacheConfig(**v)
        elif k == "scheduler_config":
            out[k] = api.SchedulerConfig(
                capacity_scheduler_policy=api.CapacitySchedulerPolicy[v["capacity_scheduler_policy"]],
                context_chunking_policy=api.ContextChunkingPolicy[v["context_chunking_policy"]],
            )
        elif k == "extended_runtime_perf_knob_config":
            out[k] = api.ExtendedRuntimePerfKnobConfig(**v)
        else:
            out[k] = v
    return out


# ------------------------------------------------------------------------------------- trtllm-bench
def bench_build_flags(knobs: dict[str, Any], options: dict[str, Any], load_format: str) -> list[str]:
    """`trtllm-bench ... build` flags for the same engine (the flags that command has)."""
    opts = TrtllmOptions.model_validate(options)
    q = quantization(knobs)
    flags = [
        "--tp_size", str(opts.tensor_parallel_size),
        "--max_batch_size", str(knobs["engine_max_batch_size"]),
        "--max_num_tokens", str(knobs["engine_max_num_tokens"]),
        "--max_seq_len", str(knobs["max_seq_len"]),
    ]  # fmt: skip
    if q.quant_algo is not None:
        flags += ["--quantization", q.quant_algo]
    if load_format == "dummy":
        flags += ["--no_weights_loading", "true"]  # a bool option that takes a value, not a flag
    return flags


BENCH_BUILD_QUANTIZATIONS = ("W8A16", "W4A16", "W4A16_AWQ", "W4A8_AWQ", "W4A16_GPTQ", "FP8", "INT8", "NVFP4")


def bench_build_unsupported(knobs: dict[str, Any]) -> str | None:
    """Why `trtllm-bench build` cannot build this configuration itself (then crosscheck uses our engine)."""
    q = quantization(knobs)
    if q.quant_algo is not None and q.quant_algo not in BENCH_BUILD_QUANTIZATIONS:
        return f"trtllm-bench build has no --quantization {q.quant_algo} (it offers {', '.join(BENCH_BUILD_QUANTIZATIONS)})"
    if q.kv_cache_quant_algo is not None and q.quant_algo not in ("FP8", "NVFP4"):
        return "trtllm-bench build cannot set a KV-cache quantization on its own"
    if q.quant_algo in ("FP8", "NVFP4") and q.kv_cache_quant_algo != "FP8":
        return f"trtllm-bench build forces an FP8 KV cache with {q.quant_algo}; this trial has none"
    return None


def bench_throughput_flags(knobs: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """`trtllm-bench ... throughput` runtime flags equal to the trial's runtime knobs."""
    opts = TrtllmOptions.model_validate(options)
    flags = [
        "--backend", "tensorrt",
        "--max_batch_size", str(knobs["max_batch_size"]),
        "--max_num_tokens", str(knobs["max_num_tokens"]),
        "--kv_cache_free_gpu_mem_fraction", str(knobs["kv_cache_fraction"]),
        "--scheduler_policy", knobs["scheduler_policy"],
        "--tp", str(opts.tensor_parallel_size),
    ]  # fmt: skip
    flags.append("--enable_chunked_context" if knobs["chunked_prefill"] else "--disable_chunked_context")
    return flags


# ------------------------------------------------------------------------------------ feasibility
def memory_estimate(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext, options: dict[str, Any]
) -> dict[str, float] | None:
    """Estimated weights, activations and KV pool (bytes, tokens), from config.json; None when unknown."""
    cfg = ctx.model_config
    try:
        opts = TrtllmOptions.model_validate(options)
        q = quantization(knobs)
        dbytes = _dtype_bytes(ctx.model_dtype)
        total = device.total_memory_bytes * opts.tensor_parallel_size
        fmt = "fp32" if q.weight_format == "bf16" and dbytes == 4.0 else q.weight_format
        weights = estimate.weight_bytes(cfg, fmt, dbytes)
        act = estimate.activation_bytes(cfg, int(knobs["engine_max_num_tokens"]), dbytes)
        kv_b = {"FP8": 1.0, "INT8": 1.0, "NVFP4": 0.5625}.get(q.kv_cache_quant_algo or "", dbytes)
        per_token = estimate.kv_bytes_per_token(cfg, kv_b)
    except (KeyError, TypeError, ValueError):
        return None
    overhead = opts.runtime_overhead_gb * estimate.GiB
    free_after = total - weights - act - overhead
    pool = max(free_after, 0) * float(knobs["kv_cache_fraction"])
    return {
        "total_bytes": float(total),
        "weights_bytes": float(weights),
        "activation_bytes": float(act),
        "overhead_bytes": float(overhead),
        "free_after_engine_bytes": float(free_after),
        "kv_pool_bytes": float(pool),
        "kv_bytes_per_token": float(per_token),
        "kv_pool_tokens": float(pool // per_token) if per_token else 0.0,
    }


def infeasible_reason(
    knobs: dict[str, Any], device: DeviceInfo, ctx: FeasibilityContext | None, options: dict[str, Any]
) -> str | None:
    """Why this trial cannot run, decided before building: device, architecture, bounds, memory estimate."""
    ctx = ctx or FeasibilityContext()
    if device.kind != "cuda":
        return "the trtllm engine needs an NVIDIA GPU; this trial's device is the CPU (use engine: hf there)"
    q = quantization(knobs)
    cc = device.compute_capability or (0, 0)
    if cc < q.min_cc:
        arch = {
            (8, 9): "Ada or Hopper (compute capability >= 8.9)",
            (10, 0): "Blackwell (compute capability >= 10.0)",
        }
        return (
            f"quantization {knobs['quantization']} ({q.quant_algo or ''}{'+kv ' + q.kv_cache_quant_algo if q.kv_cache_quant_algo else ''})"
            f" needs {arch.get(q.min_cc, f'compute capability >= {q.min_cc[0]}.{q.min_cc[1]}')}; "
            f"{device.name} has {cc[0]}.{cc[1]}"
        )
    if (10, 0) <= cc < (12, 0) and q.weight_format in ("int8", "int4"):
        return (
            f"quantization {knobs['quantization']} ({q.quant_algo}): TensorRT-LLM's TensorRT backend does not "
            f"support INT8/INT4 weights or SmoothQuant on SM>=100; {device.name} has {cc[0]}.{cc[1]}"
        )
    if q.kv_cache_quant_algo == "INT8" and knobs["chunked_prefill"]:
        return (
            "an INT8 KV cache turns off paged context FMHA in the TensorRT builder, so chunked_prefill is "
            "unavailable with quantization " + knobs["quantization"]
        )
    if ctx.model_dtype == "bfloat16" and cc < (8, 0):
        return f"bfloat16 needs compute capability >= 8.0; {device.name} has {cc[0]}.{cc[1]}"
    for run, eng in (
        ("max_batch_size", "engine_max_batch_size"),
        ("max_num_tokens", "engine_max_num_tokens"),
    ):
        if knobs[run] > knobs[eng]:
            return (
                f"{run}={knobs[run]} exceeds the engine's {eng}={knobs[eng]} (TensorRT-LLM would clamp it, "
                f"so the trial would repeat another); raise {eng}"
            )
    if knobs["max_input_len"] > knobs["max_seq_len"]:
        return f"max_input_len={knobs['max_input_len']} exceeds max_seq_len={knobs['max_seq_len']}"
    for what, prompt, out in (
        ("the workload's longest request", ctx.longest_prompt, ctx.longest_output),
        (
            "a GSM8K request (accuracy.max_input_len + max_gen_toks)",
            ctx.accuracy_input_len,
            ctx.accuracy_gen_len,
        ),
    ):
        if prompt is None:
            continue
        if prompt > knobs["max_input_len"]:
            return f"{what} has a {prompt}-token prompt, over the engine's max_input_len={knobs['max_input_len']}"
        if out is not None and prompt + out > knobs["max_seq_len"]:
            return f"{what} needs {prompt}+{out} tokens, over the engine's max_seq_len={knobs['max_seq_len']}"
        # GSM8K prompts (~1000 tokens 5-shot) are bounded, not sized, by accuracy.max_input_len
        if (
            not knobs["chunked_prefill"]
            and prompt > knobs["max_num_tokens"]
            and what.startswith("the workload")
        ):
            return (
                f"{what} has a {prompt}-token prompt, over max_num_tokens={knobs['max_num_tokens']} "
                "with chunked_prefill off (turn it on or raise max_num_tokens)"
            )
    if ctx.model_config:
        est = memory_estimate(knobs, device, ctx, options)
        if est is not None:
            g = estimate.GiB
            if est["free_after_engine_bytes"] <= 0:
                return (
                    f"estimated not to fit: weights {est['weights_bytes'] / g:.1f} GiB + activations "
                    f"{est['activation_bytes'] / g:.1f} GiB + runtime {est['overhead_bytes'] / g:.1f} GiB exceed "
                    f"the {est['total_bytes'] / g:.1f} GiB of {device.name} (an estimate from config.json)"
                )
            need = max(
                (p or 0) + (o or 0)
                for p, o in (
                    (ctx.longest_prompt, ctx.longest_output),
                    (ctx.accuracy_input_len, ctx.accuracy_gen_len),
                )
            )
            if need and est["kv_pool_tokens"] < need:
                return (
                    f"estimated not to fit: the KV pool of about {est['kv_pool_tokens']:.0f} tokens "
                    f"(kv_cache_fraction={knobs['kv_cache_fraction']} of {est['free_after_engine_bytes'] / g:.1f} GiB) "
                    f"cannot hold one {need}-token request (an estimate from config.json)"
                )
    return None
