"""The opened `hf` engine: a model (loaded, reused from the pool, or random and quantized in place)
under transformers' continuous-batching manager, with per-token timestamps.

Opening takes short steps: load the model (`load_model`), the tokenizer, the generation config,
start the manager with the knobs' ContinuousBatchingConfig (`config.cb_config_args`), then read
back what the manager resolved (KV blocks, requests per step). Streaming costs a partial output per
token, so it is asked for only where a request can be preempted or must watch stop strings.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.engines.base import Artifact, EngineError, OpenContext, Request, RequestRecord
from workbench.engines.hf.config import cb_config_args, cb_config_kwargs
from workbench.engines.hf.quantize import quantize_in_place, torch_dtype
from workbench.engines.runner import Runner, RunnerStats
from workbench.knobs import MAX_BATCH_SIZE, QUANTIZATION


def load_model(ctx: OpenContext, artifact: Artifact, attn: str) -> tuple[Any, bool, float]:
    """(model, reused from the pool, seconds spent quantizing random weights)."""
    pool = ctx.model_pool
    key = (
        ctx.model_source,
        ctx.model_dtype,
        ctx.load_format,
        ctx.knobs.get(QUANTIZATION, "none"),
        attn,
        str(artifact.path),
    )
    cached = pool.get(key) if pool is not None else None
    if cached is not None:
        return cached, True, 0.0
    if pool is not None:
        pool.clear()  # one model at a time: the pool frees the last configuration's weights first
    quantize_s = 0.0
    if ctx.load_format == "dummy":
        model = random_model(ctx, attn)
        q = ctx.knobs.get(QUANTIZATION, "none")
        if q != "none":  # quantize the random weights in place, as TorchAoConfig does when loading
            t = time.perf_counter()
            quantize_in_place(model, q)
            quantize_s = time.perf_counter() - t
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(
            str(artifact.path),
            revision=None if artifact.build_key else ctx.model_revision,
            dtype=torch_dtype(ctx.model_dtype),
            device_map=ctx.device.kind if ctx.device.kind == "cuda" else None,
            attn_implementation=attn,
            trust_remote_code=ctx.trust_remote_code,
        )
    if pool is not None:
        pool.put(key, model)
    return model, False, quantize_s


def random_model(ctx: OpenContext, attn: str) -> Any:
    """load_format dummy: the architecture from config.json with random weights, made on the device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(
        ctx.model_source, revision=ctx.model_revision, trust_remote_code=ctx.trust_remote_code
    )
    dtype = torch_dtype(ctx.model_dtype)
    if dtype == "auto":
        dtype = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None) or torch.float32
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with torch.device(ctx.device.kind):
        return AutoModelForCausalLM.from_config(
            cfg, dtype=dtype, attn_implementation=attn, trust_remote_code=ctx.trust_remote_code
        )


def load_tokenizer(ctx: OpenContext) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        ctx.tokenizer or ctx.model_source,
        revision=ctx.model_revision,
        trust_remote_code=ctx.trust_remote_code,
    )


def generation_config(model: Any, tokenizer: Any) -> tuple[Any, int | None]:
    """Greedy decoding with the model's end-of-sequence token (the tokenizer's when the model has none)."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    cfg = GenerationConfig(
        do_sample=False, max_new_tokens=256, eos_token_id=eos if eos is not None else -1, pad_token_id=pad
    )
    return cfg, eos


def kv_bytes_per_token(cfg: Any, dtype_bytes: int) -> int:
    """K and V for every layer (workbench.estimate's formula on a transformers config object)."""
    from workbench.estimate import kv_bytes_per_token as from_dict

    return from_dict(cfg.to_dict(), dtype_bytes)


def tensor_bytes(t: Any) -> int:
    """Bytes a (possibly torchao subclass) tensor really holds."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None:
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


class HFRunner(Runner):
    def __init__(self, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]):
        import torch

        self._torch = torch
        t0 = time.perf_counter()
        self.model, self.model_reused, self.quantize_s = load_model(
            ctx, artifact, knobs["attn_implementation"]
        )
        self.model.eval()
        self.tokenizer = load_tokenizer(ctx)
        self.load_s = time.perf_counter() - t0
        cfg = self.model.config
        self.vocab_size = int(cfg.vocab_size)
        self.weights_bytes = sum(tensor_bytes(p) for p in self.model.parameters())
        self.kv_bytes_per_token = kv_bytes_per_token(cfg, self.model.dtype.itemsize)
        self.gen_config, self.eos_token_id = generation_config(self.model, self.tokenizer)
        self._start_manager(
            cb_config_args(knobs, ctx.device.kind, ctx.cpu_kv_budget_gb, self.kv_bytes_per_token)
        )
        self.resolved_config = self._resolved(knobs, artifact)
        self._pending: dict[str, tuple[Request, float]] = {}
        self._times: dict[str, list[float]] = {}
        self._started = False
        self._max_requests = int(self.resolved_config["max_requests_per_batch"] or knobs[MAX_BATCH_SIZE])
        longest = ctx.longest_request
        self._stream_all = longest is None or self.kv_cache_tokens < self._max_requests * longest

    def _start_manager(self, cb_args: dict[str, Any]) -> None:
        from transformers import ContinuousBatchingConfig

        self.manager = self.model.init_continuous_batching(
            generation_config=self.gen_config,
            continuous_batching_config=ContinuousBatchingConfig(
                **cb_config_kwargs(ContinuousBatchingConfig, cb_args)
            ),
        )
        # warmup() creates the batch processor, which sizes the cache (and captures CUDA graphs)
        self.manager.warmup()
        cache = self.manager.batch_processor.cache
        self.num_blocks = int(cache.num_blocks)
        self.page_size = int(getattr(cache, "page_size", getattr(cache, "block_size", cb_args["page_size"])))
        self.kv_cache_tokens = self.num_blocks * self.page_size

    def _resolved(self, knobs: dict[str, Any], artifact: Artifact) -> dict[str, Any]:
        """What the manager really runs with, flat, for MLflow params."""
        r = self.manager.continuous_batching_config
        return {
            "max_requests_per_batch": r.max_requests_per_batch,
            "max_batch_tokens": r.max_batch_tokens,
            "num_blocks": self.num_blocks,
            "page_size": int(knobs["page_size"]),
            "max_memory_percent": r.max_memory_percent,
            "scheduler_type": r.scheduler_type,
            "allow_block_sharing": r.allow_block_sharing,
            "use_cuda_graph": str(r.use_cuda_graph),
            "use_async_batching": str(r.use_async_batching),
            "auto_knobs": ",".join(sorted(k for k, v in knobs.items() if v is None or v == "auto")) or "none",
            "attn_implementation": knobs["attn_implementation"],
            "torch_dtype": str(self.model.dtype).removeprefix("torch."),
            "device": str(self.model.device),
            "quantization": artifact.manifest.get("build_knobs", {}).get(QUANTIZATION, "none"),
            "kv_cache_tokens": self.kv_cache_tokens,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "weights_bytes": self.weights_bytes,
            "model_reused": self.model_reused,
            "quantize_s": self.quantize_s,
        }

    def _streaming(self, request: Request) -> bool:
        """Stream where a request can be preempted (its KV may not fit) or must watch stop strings."""
        need = self._max_requests * (len(request.input_ids) + request.max_new_tokens)
        return self._stream_all or bool(request.stop) or (self.kv_cache_tokens or 0) < need

    def submit(self, request: Request) -> None:
        if not self._started:
            self.manager.start()
            self._started = True
        self._pending[request.id] = (request, time.perf_counter())
        self.manager.add_request(
            input_ids=request.input_ids,
            request_id=request.id,
            max_new_tokens=request.max_new_tokens,
            # stop strings are watched on the streamed partial outputs (the engine has none of its own)
            streaming=self._streaming(request),
            record_timestamps=True,
            eos_token_id=-1 if request.ignore_eos else self.eos_token_id,
        )

    def collect(self, timeout: float) -> list[RequestRecord]:
        out: list[RequestRecord] = []
        deadline = time.perf_counter() + timeout
        while self._pending:
            remaining = deadline - time.perf_counter()
            result = self.manager.get_result(timeout=max(remaining, 0.0) if not out else 0.0)
            if result is None:
                if not self.manager.is_running() and self._started:
                    fatal = self.manager.background_thread_status.fatal_error
                    raise EngineError(f"the continuous-batching loop stopped: {fatal!r}")
                break
            rec = self._finished(result)
            if rec is not None:
                out.append(rec)
        return out

    def _finished(self, result: Any) -> RequestRecord | None:
        """The record of a finished (or stopped) request; None for a partial output."""
        if result.request_id not in self._pending:
            return None  # a late partial output of a request already stopped at a stop string
        times = self._merge_times(result)
        req, arrival = self._pending[result.request_id]
        stopped = not result.is_finished() and bool(req.stop) and self._hit_stop(result, req.stop)
        if not result.is_finished() and not stopped:
            return None
        if stopped:  # the text already holds a stop string: spend no more compute on it
            self.manager.cancel_request(req.id)
        del self._pending[result.request_id]
        self._times.pop(result.request_id, None)
        return RequestRecord(
            id=req.id,
            input_len=len(req.input_ids),
            arrival=arrival,
            token_times=times,
            finish=result.lifespan[1] if result.lifespan[1] > 0 else time.perf_counter(),
            output_ids=list(result.generated_tokens),
            error=str(result.error) if result.error else None,
        )

    def _hit_stop(self, result: Any, stop: list[str]) -> bool:
        """Whether the newest tokens contain a stop string (a window wide enough for any stop string)."""
        tail = self.tokenizer.decode(result.generated_tokens[-24:], skip_special_tokens=True)
        return any(s and s in tail for s in stop)

    def _merge_times(self, result: Any) -> list[float]:
        """Token times of a request, kept across preemption.

        When the KV cache runs full, transformers preempts a request and restarts it with its generated
        tokens folded into the prompt; the restarted request's timestamps cover only the new tokens. The
        streamed partial outputs let us keep the times of the tokens generated before the restart.
        """
        ts = list(result.timestamps or [])
        n = len(result.generated_tokens)
        prev = self._times.get(result.request_id, [])
        merged = prev[: max(0, n - len(ts))] + ts
        self._times[result.request_id] = merged
        return merged

    def stats(self) -> RunnerStats:
        return RunnerStats(
            weights_bytes=self.weights_bytes,
            kv_cache_tokens=self.kv_cache_tokens,
            kv_bytes_per_token=self.kv_bytes_per_token,
            dtype=str(self.model.dtype).removeprefix("torch.") if self.model is not None else None,
            model_reused=self.model_reused,
            scheduling_policy=self.resolved_config.get("scheduler_type"),
        )

    def close(self) -> None:
        try:
            if self._started:
                self.manager.stop(block=True, timeout=30)
            self.manager.destroy()
        finally:
            del self.manager
            self.model = None
            import gc

            gc.collect()
            if self._torch.cuda.is_available():
                self._torch.cuda.empty_cache()
