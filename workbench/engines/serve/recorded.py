"""The command-line options of the servers we cannot run here, as their documentation and source state them.

Every flag a command line of ours uses must be in its server's set (tests/test_serve.py checks), so a
renamed flag shows up as a failing test when the set is updated from a new release.
Sources (read 2026-11-27, also in docs/serving.md):

- trtllm-serve 1.2.x: tensorrt_llm/commands/serve.py (click options) and
  docs/source/commands/trtllm-serve.rst of NVIDIA/TensorRT-LLM; `--extra_llm_api_options` is the
  LLM-API YAML (`--config` is its alias in 1.2); the JSON /metrics needs `enable_iter_perf_stats`.
- vLLM: recorded from vLLM 0.26.0 itself, with the engine (workbench/engines/vllm/api/).
- SGLang 0.5.23: sglang/srt/server_args.py and docs.sglang.io "Server Arguments";
  `python -m sglang.launch_server --model-path ...`; /metrics needs `--enable-metrics`.
"""

from __future__ import annotations

TRTLLM_SERVE_OPTIONS = frozenset(
    {
        "--host",
        "--port",
        "--backend",
        "--tokenizer",
        "--max_batch_size",
        "--max_num_tokens",
        "--max_seq_len",
        "--max_beam_width",
        "--tp_size",
        "--pp_size",
        "--ep_size",
        "--gpus_per_node",
        "--kv_cache_free_gpu_memory_fraction",
        "--free_gpu_memory_fraction",
        "--num_postprocess_workers",
        "--trust_remote_code",
        "--extra_llm_api_options",
        "--config",
        "--log_level",
        "--reasoning_parser",
    }
)
#: keys of the LLM-API YAML we write (tensorrt_llm/llmapi/llm_args.py, TorchLlmArgs)
TRTLLM_YAML_KEYS = frozenset(
    {
        "kv_cache_config",
        "cuda_graph_config",
        "enable_chunked_prefill",
        "enable_iter_perf_stats",
        "scheduler_config",
        "attn_backend",
        "disable_overlap_scheduler",
        "print_iter_log",
    }
)

SGLANG_OPTIONS = frozenset(
    {
        "--model-path",
        "--tokenizer-path",
        "--host",
        "--port",
        "--dtype",
        "--load-format",
        "--trust-remote-code",
        "--revision",
        "--mem-fraction-static",
        "--max-running-requests",
        "--max-total-tokens",
        "--chunked-prefill-size",
        "--max-prefill-tokens",
        "--page-size",
        "--schedule-conservativeness",
        "--kv-cache-dtype",
        "--quantization",
        "--attention-backend",
        "--disable-radix-cache",
        "--disable-cuda-graph",
        "--cuda-graph-max-bs",
        "--enable-metrics",
        "--tp-size",
        "--served-model-name",
        "--context-length",
        "--random-seed",
    }
)

#: the options each server accepts, by engine name
RECORDED = {"trtllm-serve": TRTLLM_SERVE_OPTIONS, "sglang": SGLANG_OPTIONS}


def flags(cmd: list[str]) -> list[str]:
    """The option names of a command line (`--x` and the part before `=` of `--x=y`)."""
    return [c.split("=", 1)[0] for c in cmd if c.startswith("--")]
