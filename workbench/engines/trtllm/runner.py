"""Opened TensorRT-LLM models: one request loop (`LlmApiRunner`) for both TensorRT-LLM engines.

`TorchRunner` opens a Hugging Face checkpoint (the source model, the ModelOpt-built one from the cache,
or a pre-quantized one) with `from tensorrt_llm import LLM`; the legacy TensorRT engine's runner is in
trtllm_tensorrt/runner.py. Both stream every request through `generate_async(..., streaming=True)` on
an event loop of their own, so token arrival times are real.
"""

from __future__ import annotations

import contextlib
import gc
import json
import queue
import time
from pathlib import Path
from typing import Any

import workbench.engines.trtllm.args as TT
from workbench.devicemem import nvml_used, wait_for_release
from workbench.engines.base import Artifact, OpenContext, Request, RequestRecord
from workbench.engines.runner import EventLoopThread, Runner, RunnerStats, drain


class LlmApiRunner(Runner):
    """The request loop both TensorRT-LLM engines share: `generate_async` streaming on a loop thread.

    A subclass opens its LLM and then calls `_begin` (device baseline) before and `_start_loop` after."""

    #: where get_stats()'s gpuMemUsage is recorded (the subclass says what it measures)
    GPU_MEM_KEY = "gpu_mem_bytes"

    def _begin(self, api: Any, ctx: OpenContext, memory_settle_timeout_s: float) -> None:
        self._api = api  # tensorrt_llm's classes (trtllm.engine.load_api)
        self._ctx = ctx
        self._settle_s = memory_settle_timeout_s
        self._device_index = ctx.device.index or 0
        self._baseline = nvml_used(self._device_index)

    def _start_loop(self) -> None:
        self.kv_cache_tokens: int | None = None
        #: tokens each decode step produced, per request (RequestOutput.avg_decoded_tokens_per_iter at
        #: 1.2.1): above 1 only where speculative decoding accepted drafts
        self._decoded_per_iter: list[float] = []
        self._done: queue.Queue[RequestRecord] = queue.Queue()
        self._lt = EventLoopThread("trtllm-requests")

    # generate_async must be called with an event loop running (its async queue binds to it)
    def submit(self, request: Request) -> None:
        arrival = time.perf_counter()
        self._lt.submit(self._one(request, arrival))

    async def _one(self, req: Request, arrival: float) -> None:
        rec = RequestRecord(
            id=req.id, input_len=len(req.input_ids), arrival=arrival, token_times=[], finish=0.0
        )
        try:
            sp = self._api.SamplingParams(
                **TT.sampling_args(req.max_new_tokens, req.ignore_eos, req.stop, detokenize=bool(req.stop))
            )
            out = None
            async for out in self.llm.generate_async(list(req.input_ids), sampling_params=sp, streaming=True):
                now = time.perf_counter()
                new = len(out.outputs[0].token_ids) - len(rec.token_times)
                if new > 0:  # a step may deliver several tokens: they arrived together
                    rec.token_times.extend([now] * new)
            if out is not None:
                rec.output_ids = list(out.outputs[0].token_ids)
                per_iter = getattr(out, "avg_decoded_tokens_per_iter", None)  # tensorrt_llm's RequestOutput
                if per_iter:
                    self._decoded_per_iter.append(float(per_iter))
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
        if self._decoded_per_iter:
            n = len(self._decoded_per_iter)
            info["spec_decoding.tokens_per_step_mean"] = sum(self._decoded_per_iter) / n
        self.resolved_config.update(info)

    def close(self) -> None:
        t0 = time.perf_counter()
        try:
            self.llm.shutdown()
        finally:
            self._lt.stop()
            with contextlib.suppress(Exception):
                del self.llm
            gc.collect()
            released = wait_for_release(self._device_index, self._baseline, timeout_s=self._settle_s)
            self.resolved_config["memory_released"] = released
            self.resolved_config["shutdown_s"] = time.perf_counter() - t0


def kv_stats(stats: Any, mem_key: str = "executor_gpu_mem_bytes") -> dict[str, Any]:
    """The KV pool (maxNumBlocks x tokensPerBlock) and `gpuMemUsage` (under `mem_key`) from get_stats().

    Entries come as dicts or as JSON strings (the 1.2.1 docstring's example shows strings). With
    speculative decoding, the draft tokens proposed and accepted over the entries (`specDecodingStats`:
    key names from code of other commits, not confirmed at 1.2.1, so read only where present)."""
    out: dict[str, Any] = {}
    drafted = accepted = 0
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
        spec = s.get("specDecodingStats") or {}
        drafted += int(spec.get("numDraftTokens") or 0)
        accepted += int(spec.get("numAcceptedTokens") or 0)
    if drafted:
        out["spec_decoding.draft_tokens"] = drafted
        out["spec_decoding.acceptance_rate"] = accepted / drafted
    return out


class TorchRunner(LlmApiRunner):
    """A Hugging Face checkpoint on TensorRT-LLM's PyTorch backend (`from tensorrt_llm import LLM`)."""

    #: the PyExecutor's gpuMemUsage is total - free of torch.cuda.mem_get_info(): the whole device's use
    GPU_MEM_KEY = "device_gpu_mem_used_bytes"

    def __init__(
        self, api: Any, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any], model_path: str
    ):
        from transformers import AutoTokenizer

        self._begin(api, ctx, ctx.options.memory_settle_timeout_s)
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
