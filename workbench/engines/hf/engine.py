"""The `hf` engine: Hugging Face transformers continuous batching, with torchao quantization.

Runs anywhere torch runs (CPU here, a GPU through the device tool) and is the documented fallback
when TensorRT-LLM fails. Knob mapping (TensorRT-LLM's name -> transformers):

  max_batch_size    -> ContinuousBatchingConfig.max_requests_per_batch (requests scheduled per step)
  max_num_tokens    -> ContinuousBatchingConfig.max_batch_tokens (token budget per step; a longer
                       prompt is prefilled in chunks, so this is also the chunked-prefill size)
  kv_cache_fraction -> paged KV-cache size. On CUDA: max_memory_percent, the fraction of free device
                       memory after the weights are loaded (like free_gpu_memory_fraction). On CPU:
                       num_blocks = fraction x trial.cpu_kv_budget_gb / bytes per block, because
                       free RAM moves between runs and would make results irreproducible.
  quantization      -> torchao via TorchAoConfig (build-time: the quantized checkpoint is cached)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import (
    Artifact,
    DeviceInfo,
    Engine,
    EngineError,
    FeasibilityContext,
    OpenContext,
    Request,
    RequestRecord,
    Runner,
    RunnerStats,
)
from workbench.knobs import KnobDef

QUANTIZATIONS = ("none", "int8", "int8_dynamic", "int4", "int4_intx", "float8", "float8_dynamic")

_KNOBS = [
    KnobDef("max_batch_size", "int", False, 1024, "most requests scheduled in one step", low=1),
    KnobDef(
        "kv_cache_fraction",
        "float",
        False,
        0.9,
        "share of free memory (CPU: of the budget) for the KV cache",
        low=0.0,
        high=1.0,
        low_exclusive=True,
    ),
    KnobDef("max_num_tokens", "int", False, 8192, "token budget per step = chunked-prefill size", low=1),
    KnobDef(
        "quantization",
        "categorical",
        True,
        "none",
        "torchao weight (and activation) quantization",
        choices=QUANTIZATIONS,
    ),
    KnobDef("page_size", "int", False, 256, "tokens per KV-cache block (tokens_per_block)", low=1),
    KnobDef(
        "scheduler",
        "categorical",
        False,
        "fifo",
        "fifo (decode first) or prefill_first",
        choices=("fifo", "prefill_first"),
    ),
    KnobDef("block_reuse", "bool", False, True, "prefix caching (enable_block_reuse)"),
    KnobDef(
        "attn_implementation",
        "categorical",
        False,
        "sdpa",
        "attention kernel",
        choices=("sdpa", "paged|eager", "flash_attention_2", "kernels-community/flash-attn3"),
    ),
    KnobDef("cuda_graphs", "bool", False, False, "capture CUDA graphs (GPU only)"),
]




def torchao_config(name: str) -> Any:
    """The torchao config object for a quantization name (imports torchao)."""
    import torch
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        IntxWeightOnlyConfig,
    )
    from torchao.quantization.granularity import PerGroup, PerRow

    return {
        "int8": lambda: Int8WeightOnlyConfig(),
        "int8_dynamic": lambda: Int8DynamicActivationInt8WeightConfig(),
        "int4": lambda: Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"),
        "int4_intx": lambda: IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)),
        "float8": lambda: Float8WeightOnlyConfig(),
        "float8_dynamic": lambda: Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
    }[name]()


def _dtype(name: str) -> Any:
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


class HFEngine(Engine):
    name = "hf"
    version = "1"
    knobs = {k.name: k for k in _KNOBS}

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        model_dtype = context.model_dtype
        q = knobs.get("quantization", "none")
        cc = device.compute_capability
        if q == "int4":
            if device.kind != "cuda":
                return (
                    "int4 (torchao Int4WeightOnlyConfig, tile-packed) needs a CUDA GPU; on CPU use "
                    "int4_intx (int4 values stored unpacked in int8)"
                )
            if model_dtype != "bfloat16":
                return "int4 (tile_packed_to_4d) supports only model.dtype: bfloat16"
        if q == "float8_dynamic" and (device.kind != "cuda" or cc is None or cc < (8, 9)):
            have = f"compute capability {cc[0]}.{cc[1]}" if cc else device.kind.upper()
            return f"float8_dynamic needs a GPU with compute capability >= 8.9 (Ada, Hopper or newer); this is {have}"
        if knobs.get("cuda_graphs") and device.kind != "cuda":
            return "cuda_graphs needs a CUDA GPU"
        if (
            str(knobs.get("attn_implementation", "sdpa")).startswith(("flash", "kernels"))
            and device.kind != "cuda"
        ):
            return f"attn_implementation {knobs['attn_implementation']} needs a CUDA GPU"
        return None

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        return build_knobs.get("quantization", "none") != "none"

    # ---------------------------------------------------------------------------------------- build
    def build(self, ctx: OpenContext, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer, TorchAoConfig

        q = build_knobs["quantization"]
        t0 = time.perf_counter()
        if ctx.load_format == "dummy":
            # random weights are made and quantized on the device when the engine opens: nothing to save
            (out_dir / "dummy.json").write_text(json.dumps({"quantization": q, "load_format": "dummy"}))
            return {"steps_s": {}}
        model = AutoModelForCausalLM.from_pretrained(
            ctx.model_source,
            revision=ctx.model_revision,
            dtype=_dtype(ctx.model_dtype),
            device_map=ctx.device.kind if ctx.device.kind == "cuda" else None,
            quantization_config=TorchAoConfig(quant_type=torchao_config(q)),
            trust_remote_code=ctx.trust_remote_code,
        )
        t_quant = time.perf_counter() - t0
        model.save_pretrained(out_dir)
        AutoTokenizer.from_pretrained(
            ctx.tokenizer or ctx.model_source,
            revision=ctx.model_revision,
            trust_remote_code=ctx.trust_remote_code,
        ).save_pretrained(out_dir)
        return {"steps_s": {"load_and_quantize": t_quant, "save": time.perf_counter() - t0 - t_quant}}

    # ----------------------------------------------------------------------------------------- open
    def open(self, ctx: OpenContext, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        return HFRunner(ctx, artifact, runtime_knobs)


class HFRunner(Runner):
    def __init__(self, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]):
        import torch
        from transformers import (
            AutoModelForCausalLM,
            AutoTokenizer,
            ContinuousBatchingConfig,
            GenerationConfig,
        )

        self._torch = torch
        device = ctx.device
        t0 = time.perf_counter()
        src = str(artifact.path)
        self.quantize_s = 0.0
        pool_key = (
            ctx.model_source,
            ctx.model_dtype,
            ctx.load_format,
            ctx.knobs.get("quantization", "none"),
            knobs["attn_implementation"],
            str(artifact.path),
        )
        pool = ctx.model_pool
        cached = pool.get(pool_key) if pool is not None else None
        self.model_reused = cached is not None
        if pool is not None and not self.model_reused:
            pool.clear()  # one model at a time: the pool frees the last configuration's weights first
        if cached is not None:
            self.model = cached
        elif ctx.load_format == "dummy":
            self.model = _random_model(ctx, ctx.model_source, knobs["attn_implementation"])
            q = ctx.knobs.get("quantization", "none")
            if q != "none":  # quantize the random weights in place, as TorchAoConfig does when loading
                from torchao.quantization import quantize_

                tq = time.perf_counter()
                quantize_(  # the lm_head stays unquantized, as transformers' TorchAoConfig leaves it
                    self.model,
                    torchao_config(q),
                    filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and "lm_head" not in fqn,
                )
                self.quantize_s = time.perf_counter() - tq
        else:
            self.model = AutoModelForCausalLM.from_pretrained(
                src,
                revision=None if artifact.build_key else ctx.model_revision,
                dtype=_dtype(ctx.model_dtype),
                device_map=device.kind if device.kind == "cuda" else None,
                attn_implementation=knobs["attn_implementation"],
                trust_remote_code=ctx.trust_remote_code,
            )
        if pool is not None and not self.model_reused:
            pool.put(pool_key, self.model)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(
            ctx.tokenizer or ctx.model_source,
            revision=ctx.model_revision,
            trust_remote_code=ctx.trust_remote_code,
        )
        self.load_s = time.perf_counter() - t0
        cfg = self.model.config
        self.vocab_size = int(cfg.vocab_size)
        self.weights_bytes = sum(_tensor_bytes(p) for p in self.model.parameters())
        self.kv_bytes_per_token = kv_bytes_per_token(cfg, self.model.dtype.itemsize)
        page = int(knobs["page_size"])
        cb_args: dict[str, Any] = dict(
            max_requests_per_batch=int(knobs["max_batch_size"]),
            max_batch_tokens=int(knobs["max_num_tokens"]),
            page_size=page,
            scheduler_type=knobs["scheduler"],
            allow_block_sharing=bool(knobs["block_reuse"]),
            use_cuda_graph=bool(knobs["cuda_graphs"]),
        )
        frac = float(knobs["kv_cache_fraction"])
        if device.kind == "cpu":
            cb_args["num_blocks"] = cpu_num_blocks(frac, ctx.cpu_kv_budget_gb, self.kv_bytes_per_token, page)
        else:
            cb_args["max_memory_percent"] = frac
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_token_id = eos
        self.gen_config = GenerationConfig(
            do_sample=False,
            max_new_tokens=256,
            eos_token_id=eos if eos is not None else -1,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0,
        )
        self.manager = self.model.init_continuous_batching(
            generation_config=self.gen_config,
            continuous_batching_config=ContinuousBatchingConfig(**cb_args),
        )
        # warmup() creates the batch processor, which sizes the cache (and captures CUDA graphs)
        self.manager.warmup()
        cache = self.manager.batch_processor.cache
        self.kv_cache_tokens = int(cache.num_blocks) * int(
            cache.page_size if hasattr(cache, "page_size") else page
        )
        resolved = self.manager.continuous_batching_config
        self.resolved_config = {
            "max_requests_per_batch": resolved.max_requests_per_batch,
            "max_batch_tokens": resolved.max_batch_tokens,
            "num_blocks": int(cache.num_blocks),
            "page_size": page,
            "max_memory_percent": resolved.max_memory_percent,
            "scheduler_type": resolved.scheduler_type,
            "allow_block_sharing": resolved.allow_block_sharing,
            "use_cuda_graph": str(resolved.use_cuda_graph),
            "attn_implementation": knobs["attn_implementation"],
            "torch_dtype": str(self.model.dtype).removeprefix("torch."),
            "device": str(self.model.device),
            "quantization": artifact.manifest.get("build_knobs", {}).get("quantization", "none"),
            "kv_cache_tokens": self.kv_cache_tokens,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "weights_bytes": self.weights_bytes,
            "model_reused": self.model_reused,
            "quantize_s": self.quantize_s,
        }
        self._pending: dict[str, tuple[Request, float]] = {}
        self._max_requests = int(resolved.max_requests_per_batch or knobs["max_batch_size"])
        longest = ctx.longest_request
        self._stream_all = longest is None or self.kv_cache_tokens < self._max_requests * longest
        self._times: dict[str, list[float]] = {}
        self._started = False

    def submit(self, request: Request) -> None:
        if not self._started:
            self.manager.start()
            self._started = True
        arrival = time.perf_counter()
        self._pending[request.id] = (request, arrival)
        # streaming costs a partial output per token; it is only needed when requests can be preempted
        need = self._max_requests * (len(request.input_ids) + request.max_new_tokens)
        self.manager.add_request(
            input_ids=request.input_ids,
            request_id=request.id,
            max_new_tokens=request.max_new_tokens,
            # stop strings are watched on the streamed partial outputs (the engine has none of its own)
            streaming=self._stream_all or bool(request.stop) or (self.kv_cache_tokens or 0) < need,
            record_timestamps=True,
            eos_token_id=-1 if request.ignore_eos else self.eos_token_id,
        )

    def collect(self, timeout: float) -> list[RequestRecord]:
        out = []
        deadline = time.perf_counter() + timeout
        while self._pending:
            remaining = deadline - time.perf_counter()
            result = self.manager.get_result(timeout=max(remaining, 0.0) if not out else 0.0)
            if result is None:
                if not self.manager.is_running() and self._started:
                    fatal = self.manager.background_thread_status.fatal_error
                    raise EngineError(f"the continuous-batching loop stopped: {fatal!r}")
                break
            if result.request_id not in self._pending:
                continue  # a late partial output of a request already stopped at a stop string
            times = self._merge_times(result)
            req, arrival = self._pending[result.request_id]
            stopped = not result.is_finished() and bool(req.stop) and self._hit_stop(result, req.stop)
            if not result.is_finished() and not stopped:
                continue
            if stopped:  # the text already holds a stop string: spend no more compute on it
                self.manager.cancel_request(req.id)
            del self._pending[result.request_id]
            self._times.pop(result.request_id, None)
            out.append(
                RequestRecord(
                    id=req.id,
                    input_len=len(req.input_ids),
                    arrival=arrival,
                    token_times=times,
                    finish=result.lifespan[1] if result.lifespan[1] > 0 else time.perf_counter(),
                    output_ids=list(result.generated_tokens),
                    error=str(result.error) if result.error else None,
                )
            )
        return out

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


def _random_model(ctx: OpenContext, src: str, attn: str) -> Any:
    """load_format dummy: the architecture from config.json with random weights, made on the device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(
        src, revision=ctx.model_revision, trust_remote_code=ctx.trust_remote_code
    )
    dtype = _dtype(ctx.model_dtype)
    if dtype == "auto":
        dtype = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None) or torch.float32
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with torch.device(ctx.device.kind):
        return AutoModelForCausalLM.from_config(
            cfg, dtype=dtype, attn_implementation=attn, trust_remote_code=ctx.trust_remote_code
        )


def cpu_num_blocks(fraction: float, budget_gb: float, kv_bytes_per_token: int, page_size: int) -> int:
    """KV blocks for a fraction of the CPU memory budget (at least one, so the engine can report the failure)."""
    return max(1, int(fraction * budget_gb * 1024**3 // (kv_bytes_per_token * page_size)))


def kv_bytes_per_token(cfg: Any, dtype_bytes: int) -> int:
    """K and V for every layer (workbench.estimate's formula on a transformers config object)."""
    from workbench.estimate import kv_bytes_per_token as from_dict

    return from_dict(cfg.to_dict(), dtype_bytes)


def _tensor_bytes(t: Any) -> int:
    """Bytes a (possibly torchao subclass) tensor really holds."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None:
        names, _ = t.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()
