"""Opened trtllm models: one request loop for both backends, each backend's own construction.

`TrtllmRunner` opens a saved TensorRT engine (`_tensorrt_engine.LLM(model=<engine dir>)`),
`TorchRunner` a Hugging Face checkpoint (the source model, the ModelOpt-built one from the cache, or
a pre-quantized one) with `from tensorrt_llm import LLM`. Both stream every request through
`generate_async(..., streaming=True)` on an event loop of their own, so token arrival times are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import workbench.engines.trtllm.args as T
import workbench.engines.trtllm.args_torch as TT
from workbench.devicemem import nvml_used, wait_for_release
from workbench.engines.base import Artifact, OpenContext, Request, RequestRecord, Runner, RunnerStats, drain


def _opts(ctx: OpenContext) -> T.TrtllmOptions:
    return T.TrtllmOptions.model_validate(ctx.options)


class TrtllmRunner(Runner):
    """A saved TensorRT engine (backend: tensorrt)."""

    #: where get_stats()'s gpuMemUsage is recorded (the TensorRT executor's own memory accounting)
    GPU_MEM_KEY = "executor_gpu_mem_bytes"

    def __init__(self, api: Any, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]):
        from transformers import AutoTokenizer

        self._api = api  # tensorrt_llm's classes (engine.load_api)
        self._ctx = ctx
        self._device_index = ctx.device.index or 0
        self._baseline = nvml_used(self._device_index)
        tok_src = ctx.tokenizer or ctx.model_source
        self.tokenizer = AutoTokenizer.from_pretrained(
            tok_src, revision=ctx.model_revision, trust_remote_code=ctx.trust_remote_code
        )
        engine_dir = artifact.path / "engine"
        rargs = T.runtime_args(knobs, T.TrtllmOptions.model_validate(ctx.options).cuda_graph_cache_size)
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

    def _start_loop(self) -> None:
        self.kv_cache_tokens: int | None = None
        self._done: queue.Queue[RequestRecord] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="trtllm-requests")
        self._thread.start()

    # generate_async must be called with an event loop running (its async queue binds to it)
    def submit(self, request: Request) -> None:
        arrival = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._one(request, arrival), self._loop)

    async def _one(self, req: Request, arrival: float) -> None:
        rec = RequestRecord(
            id=req.id, input_len=len(req.input_ids), arrival=arrival, token_times=[], finish=0.0
        )
        try:
            sp = self._api.SamplingParams(
                **T.sampling_args(req.max_new_tokens, req.ignore_eos, req.stop, detokenize=bool(req.stop))
            )
            out = None
            async for out in self.llm.generate_async(list(req.input_ids), sampling_params=sp, streaming=True):
                now = time.perf_counter()
                new = len(out.outputs[0].token_ids) - len(rec.token_times)
                if new > 0:  # a step may deliver several tokens: they arrived together
                    rec.token_times.extend([now] * new)
            if out is not None:
                rec.output_ids = list(out.outputs[0].token_ids)
                rec.text = out.outputs[0].text if req.stop else None
        except Exception as e:  # noqa: BLE001 - a failed request is recorded, the check fails the trial
            rec.error = f"{type(e).__name__}: {e}"
        rec.finish = time.perf_counter()
        self._done.put(rec)

    def collect(self, timeout: float) -> list[RequestRecord]:
        return drain(self._done, timeout)

    def stats(self) -> RunnerStats:
        cfg = self.resolved_config
        return RunnerStats(
            weights_bytes=cfg.get("weights_bytes"),
            kv_cache_tokens=self.kv_cache_tokens,
            kv_bytes_per_token=cfg.get("kv_bytes_per_token"),
            dtype=cfg.get("torch_dtype"),
            scheduling_policy=self._ctx.knobs.get("scheduler_policy"),
        )

    def refresh_stats(self) -> None:
        """KV pool size and the executor's own memory accounting from the iteration stats."""
        try:
            stats = self.llm.get_stats(timeout=2)
        except Exception:  # noqa: BLE001 - stats are beta in 1.2.x; their absence is not a failure
            return
        info = kv_stats(stats, self.GPU_MEM_KEY)
        if info.get("kv_cache_tokens"):
            self.kv_cache_tokens = int(info["kv_cache_tokens"])
        self.resolved_config.update(info)

    def close(self) -> None:
        t0 = time.perf_counter()
        try:
            self.llm.shutdown()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            with contextlib.suppress(Exception):
                del self.llm
            gc.collect()
            released = wait_for_release(
                self._device_index, self._baseline, timeout_s=_opts(self._ctx).memory_settle_timeout_s
            )
            self.resolved_config["memory_released"] = released
            self.resolved_config["shutdown_s"] = time.perf_counter() - t0


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


def kv_stats(stats: Any, mem_key: str = "executor_gpu_mem_bytes") -> dict[str, Any]:
    """The KV pool (maxNumBlocks x tokensPerBlock) and `gpuMemUsage` (under `mem_key`) from get_stats().

    Entries come as dicts or as JSON strings (the 1.2.1 docstring's example shows strings)."""
    out: dict[str, Any] = {}
    for s in stats or []:
        if isinstance(s, str):
            with contextlib.suppress(ValueError):
                s = json.loads(s)
        if not isinstance(s, dict):
            continue
        kv = s.get("kvCacheStats") or {}
        if kv.get("maxNumBlocks") and kv.get("tokensPerBlock"):
            out["kv_cache_tokens"] = int(kv["maxNumBlocks"]) * int(kv["tokensPerBlock"])
            out["kv_cache_hit_rate"] = kv.get("cacheHitRate")
        if s.get("gpuMemUsage") is not None:
            out[mem_key] = s["gpuMemUsage"]
    return out


class TorchRunner(TrtllmRunner):
    """A Hugging Face checkpoint on the PyTorch backend (backend: pytorch, the default)."""

    #: the PyExecutor's gpuMemUsage is total - free of torch.cuda.mem_get_info(): the whole device's use
    GPU_MEM_KEY = "device_gpu_mem_used_bytes"

    def __init__(
        self, api: Any, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any], model_path: str
    ):
        from transformers import AutoTokenizer

        self._api = api
        self._ctx = ctx
        self._device_index = ctx.device.index or 0
        self._baseline = nvml_used(self._device_index)
        tok_src = ctx.tokenizer or model_path
        self.tokenizer = AutoTokenizer.from_pretrained(tok_src, trust_remote_code=ctx.trust_remote_code)
        args = TT.llm_args(knobs, ctx.options, ctx.model_dtype, ctx.load_format)
        t0 = time.perf_counter()
        self.llm = api.LLM(
            model=model_path,
            tokenizer=tok_src,
            revision=ctx.model_revision if model_path == ctx.model_source else None,
            trust_remote_code=ctx.trust_remote_code,
            **TT.llm_kwargs(args, api),
        )
        self.load_s = time.perf_counter() - t0
        self.resolved_config = torch_resolved_config(model_path, args, artifact.manifest)
        self.resolved_config["tensorrt_llm_version"] = api.version
        self.vocab_size = int(self.resolved_config.get("vocab_size") or len(self.tokenizer))
        self._start_loop()


def torch_resolved_config(model_path: str, args: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's shape and quantization (config.json, hf_quant_config.json) and the run's arguments."""
    p = Path(model_path)
    cfg = json.loads((p / "config.json").read_text()) if (p / "config.json").is_file() else {}
    hq = (
        json.loads((p / "hf_quant_config.json").read_text()) if (p / "hf_quant_config.json").is_file() else {}
    )
    quant = hq.get("quantization", {}) or {}
    kv_fp8 = args["kv_cache_config"]["dtype"] == "fp8" or quant.get("kv_cache_quant_algo") == "FP8"
    heads = cfg.get("num_attention_heads") or 0
    head = cfg.get("head_dim") or (cfg.get("hidden_size", 0) // heads if heads else 0)
    layers = cfg.get("num_hidden_layers") or 0
    out: dict[str, Any] = {
        "backend": "pytorch",
        "checkpoint": model_path,
        "architecture": (cfg.get("architectures") or [None])[0],
        "torch_dtype": cfg.get("torch_dtype") or cfg.get("dtype"),
        "vocab_size": cfg.get("vocab_size"),
        "quant_algo": quant.get("quant_algo"),
        "kv_cache_quant_algo": quant.get("kv_cache_quant_algo") or ("FP8" if kv_fp8 else None),
        "kv_bytes_per_token": 2
        * layers
        * (cfg.get("num_key_value_heads") or heads)
        * head
        * (1 if kv_fp8 else 2),
        "weights_bytes": manifest.get("checkpoint_size_bytes"),
    }
    for k, v in args.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out
