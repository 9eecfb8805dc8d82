"""Study knobs -> TensorRT-LLM 1.2.x PyTorch-backend arguments: pure functions, no tensorrt_llm import.

The PyTorch backend (`from tensorrt_llm import LLM`, TorchLlmArgs) has no engine build: the LLM
arguments are all read when the model is loaded, and quantization is the checkpoint's own
(`hf_quant_config.json`, made by ModelOpt in the build step or downloaded), so a `QuantConfig` is
never passed ("QuantConfig for pytorch backend is ignored"). The KV-cache dtype is
`KvCacheConfig.dtype`. The same dict is the trtllm-serve / trtllm-bench `--config` YAML, so what the
trial ran and what `workbench export` writes cannot differ. The conformance tests check every
result against the recorded PyTorch-backend API (api/tensorrt_llm-1.2.1-pytorch.json).
"""

from __future__ import annotations

from typing import Any

from workbench.engines.trtllm.knobs import (
    CHUNKING_POLICIES,
    SCHEDULER_POLICIES,
    SPECULATIVE,
    TORCH_COMPILE,
    TORCH_QUANTIZATIONS,
    TrtllmOptions,
    graph_batch_sizes,
)


def torch_quantization(knobs: dict[str, Any]) -> Any:
    """The PyTorch-backend quantization of these knobs (KeyError for a TensorRT-only choice)."""
    return TORCH_QUANTIZATIONS[knobs["quantization"]]


def cuda_graph_config(knobs: dict[str, Any]) -> dict[str, Any] | None:
    """CudaGraphConfig: None turns CUDA graphs off (1.2.x captures graphs by default)."""
    if not knobs["cuda_graphs"]:
        return None
    out: dict[str, Any] = {
        "enable_padding": bool(knobs["cuda_graph_padding"]),
        "max_batch_size": int(knobs["cuda_graph_max_batch_size"]),
    }
    sizes = graph_batch_sizes(knobs.get("cuda_graph_batch_sizes", "auto"), out["max_batch_size"])
    if sizes is not None:  # the largest is cuda_graph_max_batch_size, so the two fields agree
        out["batch_sizes"] = sizes
    return out


def llm_args(
    knobs: dict[str, Any], opts: TrtllmOptions, model_dtype: str, load_format: str
) -> dict[str, Any]:
    """Every TorchLlmArgs keyword of a trial but model/tokenizer: the run and the exported YAML."""
    args: dict[str, Any] = {
        "dtype": model_dtype,
        "tensor_parallel_size": opts.tensor_parallel_size,
        "max_batch_size": int(knobs["max_batch_size"]),
        "max_num_tokens": int(knobs["max_num_tokens"]),
        "max_input_len": int(knobs["max_input_len"]),
        "max_seq_len": int(knobs["max_seq_len"]),
        "enable_chunked_prefill": bool(knobs["chunked_prefill"]),
        "kv_cache_config": {
            "free_gpu_memory_fraction": float(knobs["kv_cache_fraction"]),
            "enable_block_reuse": bool(knobs["enable_block_reuse"]),
            "dtype": str(knobs["kv_cache_dtype"]),
            "tokens_per_block": int(knobs["tokens_per_block"]),
        },
        "scheduler_config": {
            "capacity_scheduler_policy": SCHEDULER_POLICIES[knobs["scheduler_policy"]],
            "context_chunking_policy": CHUNKING_POLICIES[knobs["context_chunking_policy"]],
        },
        "cuda_graph_config": cuda_graph_config(knobs),
        "disable_overlap_scheduler": not bool(knobs["overlap_scheduler"]),
        "attn_backend": str(knobs["attn_backend"]),
        # the PyExecutor builds iteration stats only with this set (TorchLlmArgs default False): without it
        # get_stats() is empty and the KV pool size and hit rate are never recorded. trtllm-serve's JSON
        # /metrics needs it too, so the exported YAML keeps it (1.2.1 docs: it "can slightly impact
        # performance"; what was measured is what is exported).
        "enable_iter_perf_stats": True,
    }
    if load_format != "auto":
        args["load_format"] = load_format
    spec = speculative_config(knobs, opts.speculative_model)
    if spec is not None:
        args["speculative_config"] = spec
    return {**args, **_optional(knobs, args["kv_cache_config"])}


def speculative_config(knobs: dict[str, Any], draft_model: str | None) -> dict[str, Any] | None:
    """TorchLlmArgs.speculative_config as its YAML dict (`decoding_type` and the class's fields), or None.

    MTP drafts `num_nextn_predict_layers` tokens (its max_draft_len follows it); EAGLE-3 is
    decoding_type Eagle with `eagle3_one_model` (1.2.1's default, kept explicit)."""
    mode = knobs.get("speculative_decoding", "none")
    decoding_type = SPECULATIVE[mode]
    if decoding_type is None:
        return None
    out: dict[str, Any] = {"decoding_type": decoding_type}
    draft = knobs.get("max_draft_len")
    if mode == "mtp":
        if draft is not None:
            out["num_nextn_predict_layers"] = int(draft)
        return out
    if draft is not None:
        out["max_draft_len"] = int(draft)
    if mode == "ngram" and knobs.get("max_matching_ngram_size") is not None:
        out["max_matching_ngram_size"] = int(knobs["max_matching_ngram_size"])
    if mode in ("eagle3", "draft_target") and draft_model is not None:
        out["speculative_model"] = draft_model
    if mode == "eagle3":
        out["eagle3_one_model"] = True
    return out


#: knob -> TorchLlmArgs field, passed only when the knob is set (null: TensorRT-LLM's own default)
OPTIONAL_ARGS = ("stream_interval", "batch_wait_timeout_iters", "batch_wait_max_tokens_ratio")
#: knob -> KvCacheConfig field, likewise
OPTIONAL_KV = {
    "host_cache_size": "host_cache_size",
    "enable_partial_reuse": "enable_partial_reuse",
    "kv_cache_max_tokens": "max_tokens",
}


def _optional(knobs: dict[str, Any], kv: dict[str, Any]) -> dict[str, Any]:
    """The set optional knobs as arguments (KvCacheConfig fields are added to `kv` in place)."""
    out: dict[str, Any] = {k: knobs[k] for k in OPTIONAL_ARGS if knobs.get(k) is not None}
    kv.update({field: knobs[k] for k, field in OPTIONAL_KV.items() if knobs.get(k) is not None})
    compile_cfg = TORCH_COMPILE[knobs.get("torch_compile", "off")]
    if compile_cfg is not None:
        out["torch_compile_config"] = dict(compile_cfg)
    return out


def serve_options(
    knobs: dict[str, Any], options: TrtllmOptions, model_dtype: str, load_format: str
) -> dict[str, Any]:
    """The `--config` YAML of trtllm-serve / trtllm-bench --backend pytorch: the trial's LLM arguments.

    tensor_parallel_size goes on the command line (both tools take it there), the rest is YAML."""
    out = llm_args(knobs, options, model_dtype, load_format)
    out.pop("tensor_parallel_size")
    return out


#: speculative_config's decoding_type -> the 1.2.1 class that takes it (tensorrt_llm.llmapi)
SPECULATIVE_CLASSES = {
    "MTP": "MTPDecodingConfig",
    "Eagle": "EagleDecodingConfig",
    "NGram": "NGramDecodingConfig",
    "DraftTarget": "DraftTargetDecodingConfig",
}


def llm_kwargs(args: dict[str, Any], api: Any) -> dict[str, Any]:
    """The translated arguments as the objects TorchLlmArgs takes (`api`: tensorrt_llm's classes, or
    the recorded snapshot's strict stand-ins in tests)."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        if k == "kv_cache_config":
            out[k] = api.KvCacheConfig(**v)
        elif k == "torch_compile_config":
            out[k] = api.TorchCompileConfig(**v)
        elif k == "cuda_graph_config":
            out[k] = None if v is None else api.CudaGraphConfig(**v)
        elif k == "speculative_config":
            fields = {f: x for f, x in v.items() if f != "decoding_type"}
            out[k] = getattr(api, SPECULATIVE_CLASSES[v["decoding_type"]])(**fields)
        elif k == "scheduler_config":
            out[k] = api.SchedulerConfig(
                capacity_scheduler_policy=api.CapacitySchedulerPolicy[v["capacity_scheduler_policy"]],
                context_chunking_policy=api.ContextChunkingPolicy[v["context_chunking_policy"]],
            )
        else:
            out[k] = v
    return out


def bench_throughput_flags(knobs: dict[str, Any], options: TrtllmOptions) -> list[str]:
    """`trtllm-bench ... throughput` flags for the PyTorch backend equal to the trial's knobs."""
    return throughput_flags(knobs, options.tensor_parallel_size, "pytorch")


def throughput_flags(knobs: dict[str, Any], tensor_parallel_size: int, backend: str) -> list[str]:
    """`trtllm-bench ... throughput` runtime flags equal to the trial's runtime knobs, for either
    TensorRT-LLM engine (`backend` is trtllm-bench's --backend; the PyTorch backend's YAML, given with
    --extra_llm_api_options, holds the rest and overrides trtllm-bench's own defaults)."""
    flags = [
        "--backend",
        backend,
        "--max_batch_size",
        str(knobs["max_batch_size"]),
        "--max_num_tokens",
        str(knobs["max_num_tokens"]),
        "--kv_cache_free_gpu_mem_fraction",
        str(knobs["kv_cache_fraction"]),
        "--scheduler_policy",
        knobs["scheduler_policy"],
        "--tp",
        str(tensor_parallel_size),
    ]
    flags.append("--enable_chunked_context" if knobs["chunked_prefill"] else "--disable_chunked_context")
    return flags


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


def serve_flags(knobs: dict[str, Any], options: TrtllmOptions) -> list[str]:
    """trtllm-serve flags besides the model and --config: the parallelism and the backend."""
    return ["--backend", "pytorch", "--tensor_parallel_size", str(options.tensor_parallel_size)]
