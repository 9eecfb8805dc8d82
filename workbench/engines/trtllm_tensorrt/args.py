"""Study knobs -> TensorRT-LLM 1.2.x TensorRT-engine LLM-API arguments: pure functions, no tensorrt_llm import.

Everything the `trtllm-tensorrt` engine passes to TensorRT-LLM, everything `workbench export` writes and every
trtllm-bench flag `workbench crosscheck` uses comes from here, as plain data (enums by member name).
The conformance tests check this data against the recorded 1.2.x API snapshot (engines/trtllm/api/), over
the whole search space, so a name or type that 1.2.x does not accept fails CI, not a GPU run.

Build-time vs runtime follows TensorRT-LLM: BuildConfig, PluginConfig, QuantConfig, CalibConfig,
dtype, tensor parallelism and load_format are baked into the engine (they form the build key);
KvCacheConfig, SchedulerConfig, chunked prefill, the runtime batch and token caps and the extended
runtime knobs are read when a saved engine is opened, so changing them never rebuilds.
"""

from __future__ import annotations

from typing import Any

from workbench.engines.trtllm.args import throughput_flags
from workbench.engines.trtllm_tensorrt.knobs import (
    CHUNKING_POLICIES,
    SCHEDULER_POLICIES,
    Quantization,
    TensorrtOptions,
    quantization,
)


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
    knobs: dict[str, Any], opts: TensorrtOptions, model_dtype: str, load_format: str
) -> dict[str, Any]:
    """The build-time LLM arguments (everything but model/tokenizer paths): these form the build key."""
    q = quantization(knobs)
    plugin: dict[str, Any] = {
        "multiple_profiles": bool(knobs["multiple_profiles"]),
        "use_paged_context_fmha": True,  # needed for chunked prefill and KV reuse
        # use_fp8_context_fmha is not passed: with paged context FMHA the 1.2.x builder forces it (on
        # exactly with an FP8 KV cache and an FP8/W4A8_AWQ/NVFP4 algorithm), so it must not split the key
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
#: the algorithms with which the 1.2.x builder keeps FP8 context FMHA (needed by paged context FMHA
#: over an FP8 KV cache); builder.py: "FP8 Paged Context FMHA is disabled because FP8 context FMHA is disabled"
FP8_FMHA_ALGOS = ("FP8", "W4A8_AWQ", "NVFP4")


def paged_context_fmha(q: Quantization) -> bool:
    """Whether the built engine really has paged context FMHA (chunked prefill and KV reuse need it):
    off with an INT8 KV cache, and with an FP8 KV cache unless the algorithm keeps FP8 context FMHA."""
    if q.kv_cache_quant_algo == "INT8":
        return False
    return not (q.kv_cache_quant_algo == "FP8" and q.quant_algo not in FP8_FMHA_ALGOS)


def runtime_args(knobs: dict[str, Any], cuda_graph_cache_size: int = 1000) -> dict[str, Any]:
    """The LLM arguments read when a saved engine is opened (never a rebuild). With cuda_graph_mode the
    graph cache is sized as trtllm-bench does (1000): the 1.2.x default 0 keeps a single graph, so every
    change of batch shape would re-capture it."""
    ext: dict[str, Any] = {
        "cuda_graph_mode": bool(knobs["cuda_graph_mode"]),
        "multi_block_mode": bool(knobs["multi_block_mode"]),
    }
    if knobs["cuda_graph_mode"]:
        ext["cuda_graph_cache_size"] = int(cuda_graph_cache_size)
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
        "extended_runtime_perf_knob_config": ext,
    }


def extra_llm_api_options(
    knobs: dict[str, Any], options: TensorrtOptions, model_dtype: str, load_format: str
) -> dict[str, Any]:
    """The `--extra_llm_api_options` YAML of trtllm-serve / trtllm-bench: runtime knobs, plus the build
    sections so that serving from the Hugging Face checkpoint builds the same engine."""
    b = build_args(knobs, options, model_dtype, load_format)
    out = runtime_args(knobs, options.cuda_graph_cache_size)
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
def bench_build_flags(knobs: dict[str, Any], opts: TensorrtOptions, load_format: str) -> list[str]:
    """`trtllm-bench ... build` flags for the same engine (the flags that command has)."""
    q = quantization(knobs)
    flags = [
        "--tp_size",
        str(opts.tensor_parallel_size),
        "--max_batch_size",
        str(knobs["engine_max_batch_size"]),
        "--max_num_tokens",
        str(knobs["engine_max_num_tokens"]),
        "--max_seq_len",
        str(knobs["max_seq_len"]),
    ]
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


def bench_throughput_flags(knobs: dict[str, Any], options: TensorrtOptions) -> list[str]:
    """`trtllm-bench ... throughput` runtime flags equal to the trial's runtime knobs (--backend tensorrt)."""
    return throughput_flags(knobs, options.tensor_parallel_size, "tensorrt")
