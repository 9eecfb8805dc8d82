"""The opened saved TensorRT engine: its construction and what it resolved; the request loop is
trtllm's (`LlmApiRunner`, shared with the PyTorch backend)."""

from __future__ import annotations

import json
import time
from typing import Any

import workbench.engines.trtllm_tensorrt.args as T
from workbench.engines.base import Artifact, OpenContext
from workbench.engines.trtllm.runner import LlmApiRunner
from workbench.engines.trtllm_tensorrt.knobs import TensorrtOptions


class TensorrtRunner(LlmApiRunner):
    """A saved TensorRT engine (`_tensorrt_engine.LLM(model=<engine dir>)`)."""

    #: where get_stats()'s gpuMemUsage is recorded (the TensorRT executor's own memory accounting)
    GPU_MEM_KEY = "executor_gpu_mem_bytes"

    def __init__(self, api: Any, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]):
        from transformers import AutoTokenizer

        opts: TensorrtOptions = ctx.options
        self._begin(api, ctx, opts.memory_settle_timeout_s)
        tok_src = ctx.tokenizer or ctx.model_source
        self.tokenizer = AutoTokenizer.from_pretrained(
            tok_src, revision=ctx.model_revision, trust_remote_code=ctx.trust_remote_code
        )
        engine_dir = artifact.path / "engine"
        rargs = T.runtime_args(knobs, opts.cuda_graph_cache_size)
        t0 = time.perf_counter()
        self.llm = api.LLM(
            model=str(engine_dir),
            tokenizer=tok_src,
            trust_remote_code=ctx.trust_remote_code,
            **T.llm_kwargs(rargs, api),
        )
        self.load_s = time.perf_counter() - t0
        cfg = json.loads((engine_dir / "config.json").read_text())
        self.resolved_config = resolved_config(cfg, rargs, artifact.manifest)
        self.resolved_config["tensorrt_llm_version"] = api.version
        self.vocab_size = int(self.resolved_config.get("vocab_size") or len(self.tokenizer))
        self._start_loop()


def resolved_config(
    engine_config: dict[str, Any], runtime: dict[str, Any], manifest: dict[str, Any]
) -> dict[str, Any]:
    """What the engine really is (its config.json) and runs with: flat, for MLflow params."""
    pc = engine_config.get("pretrained_config", {}) or {}
    bc = engine_config.get("build_config", {}) or {}
    quant = pc.get("quantization", {}) or {}
    kv_algo = quant.get("kv_cache_quant_algo")
    dtype = pc.get("dtype")
    kv_bytes = 1 if kv_algo in ("FP8", "INT8") else (4 if dtype == "float32" else 2)
    heads = pc.get("num_attention_heads") or 0
    kv_heads = pc.get("num_key_value_heads") or heads
    head = pc.get("head_size") or (pc.get("hidden_size", 0) // heads if heads else 0)
    out: dict[str, Any] = {
        "architecture": pc.get("architecture"),
        "torch_dtype": dtype,
        "vocab_size": pc.get("vocab_size"),
        "quant_algo": quant.get("quant_algo"),
        "kv_cache_quant_algo": kv_algo,
        "engine_version": engine_config.get("version"),
        "kv_bytes_per_token": 2 * (pc.get("num_hidden_layers") or 0) * kv_heads * head * kv_bytes,
        "weights_bytes": manifest.get("engine_size_bytes"),
    }
    for k in ("max_batch_size", "max_num_tokens", "max_input_len", "max_seq_len", "max_beam_width"):
        out[f"build_{k}"] = bc.get(k)
    plugin = bc.get("plugin_config", {}) or {}
    for k in (
        "multiple_profiles",
        "use_paged_context_fmha",
        "use_fp8_context_fmha",
        "tokens_per_block",
        "gemm_plugin",
    ):
        out[f"plugin_{k}"] = plugin.get(k)
    out["runtime_max_batch_size"] = runtime["max_batch_size"]
    out["runtime_max_num_tokens"] = runtime["max_num_tokens"]
    out["enable_chunked_prefill"] = runtime["enable_chunked_prefill"]
    for section in ("kv_cache_config", "scheduler_config", "extended_runtime_perf_knob_config"):
        for k, v in runtime[section].items():
            out[f"{section}.{k}"] = v
    # what the executor really does: without paged context FMHA it drops KV reuse ("KV cache reuse
    # disabled because model was not built with paged context FMHA"), whatever was asked
    paged = bool(plugin.get("use_paged_context_fmha", True)) and T.paged_context_fmha(
        T.Quantization(quant.get("quant_algo"), kv_algo, "")
    )
    out["paged_context_fmha"] = paged
    requested = runtime["kv_cache_config"].get("enable_block_reuse")
    out["kv_cache_config.enable_block_reuse_requested"] = requested
    out["kv_cache_config.enable_block_reuse"] = bool(requested) and paged
    return out
