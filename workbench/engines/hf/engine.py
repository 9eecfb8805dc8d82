"""The `hf` engine: Hugging Face transformers continuous batching, with torchao quantization.

Runs anywhere torch runs (CPU here, a GPU through the device tool) and is the documented fallback
when TensorRT-LLM fails. The baseline is transformers' own `ContinuousBatchingConfig()` defaults: a knob
left at null ("auto") is not passed, and what transformers resolved it to is recorded in the result's
engine config. Knob mapping (TensorRT-LLM's name -> transformers), in `config.py`:

  max_batch_size    -> ContinuousBatchingConfig.max_requests_per_batch (requests scheduled per step)
  max_num_tokens    -> ContinuousBatchingConfig.max_batch_tokens (token budget per step; a longer
                       prompt is prefilled in chunks, so this is also the chunked-prefill size)
  kv_cache_fraction -> paged KV-cache size: max_memory_percent on CUDA, num_blocks of the CPU budget
  quantization      -> torchao via TorchAoConfig (build-time: the quantized checkpoint is cached)

This module holds the declarations, feasibility and the build; `runner.py` the opened engine,
`export.py` the deployable settings.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import Artifact, DeviceInfo, Engine, FeasibilityContext
from workbench.engines.hf.quantize import QUANTIZATIONS, torch_dtype, torchao_config
from workbench.engines.runner import Runner
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef
from workbench.types import EngineNotInstalled

_KNOBS = [
    KnobDef(MAX_BATCH_SIZE, "int", False, None, "most requests scheduled in one step (null: auto)", low=1),
    KnobDef(
        KV_CACHE_FRACTION,
        "float",
        False,
        None,
        "share of free memory (CPU: of the budget) for the KV cache (null: transformers' default)",
        low=0.0,
        high=1.0,
        low_exclusive=True,
    ),
    KnobDef(
        MAX_NUM_TOKENS, "int", False, None, "token budget per step = chunked-prefill size (null: auto)", low=1
    ),
    KnobDef(
        QUANTIZATION,
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
    KnobDef("cuda_graphs", "bool", False, None, "capture CUDA graphs (GPU only; null: transformers decides)"),
    KnobDef(
        "use_async_batching",
        "categorical",
        False,
        "auto",
        "overlap CPU scheduling with the GPU step (GPU only; auto: on with CUDA graphs and no mask)",
        choices=("auto", True, False),
    ),
]

INSTALL_HINT = (
    "the hf engine needs torch and transformers (>= 5, continuous batching), which are not both "
    "installed in this environment: install them with `pip install -e '.[hf]'` (docs/install.md)"
)
#: torchao is needed only by a quantized build; an unquantized trial runs without it
TORCHAO_HINT = (
    "quantization {q} of the hf engine needs torchao, which is not installed in this environment: "
    "install it with `pip install -e '.[hf]'` (docs/install.md)"
)


def _quantization_reason(q: str, device: DeviceInfo, model_dtype: str) -> str | None:
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
    return None


def _kernel_reason(knobs: dict[str, Any], device: DeviceInfo) -> str | None:
    if device.kind == "cuda":
        return None
    if knobs.get("cuda_graphs"):
        return "cuda_graphs needs a CUDA GPU"
    if knobs.get("use_async_batching") is True:
        return "use_async_batching needs a CUDA GPU"
    attn = str(knobs.get("attn_implementation", "sdpa"))
    if attn.startswith(("flash", "kernels")):
        return f"attn_implementation {attn} needs a CUDA GPU"
    return None


class HFEngine(Engine):
    name = "hf"
    version = "1"
    knobs = {k.name: k for k in _KNOBS}
    packages = ("torch", "transformers", "torchao", "accelerate")

    @classmethod
    def check_available(cls) -> str | None:
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        return f"{INSTALL_HINT} (missing: {', '.join(missing)})" if missing else None

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        q = knobs.get(QUANTIZATION, "none")
        return _quantization_reason(q, device, context.model_dtype) or _kernel_reason(knobs, device)

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        return build_knobs.get(QUANTIZATION, "none") != "none"

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        from workbench.engines.hf.export import write_settings

        ctx = self.ctx
        return write_settings({**self.default_knobs(), **knobs}, ctx, out)

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer, TorchAoConfig

        ctx = self.ctx
        q = build_knobs[QUANTIZATION]
        if importlib.util.find_spec("torchao") is None:
            raise EngineNotInstalled(TORCHAO_HINT.format(q=q))
        t0 = time.perf_counter()
        if ctx.load_format == "dummy":
            # random weights are made and quantized on the device when the engine opens: nothing to save
            (out_dir / "dummy.json").write_text(json.dumps({"quantization": q, "load_format": "dummy"}))
            return {"steps_s": {}}
        model = AutoModelForCausalLM.from_pretrained(
            ctx.model_source,
            revision=ctx.model_revision,
            dtype=torch_dtype(ctx.model_dtype),
            device_map=ctx.device.kind if ctx.device.kind == "cuda" else None,
            quantization_config=TorchAoConfig(quant_type=torchao_config(q)),
            trust_remote_code=ctx.trust_remote_code,
        )
        t_quant = time.perf_counter() - t0
        model.save_pretrained(out_dir)
        tokenizer = AutoTokenizer.from_pretrained(
            ctx.tokenizer or ctx.model_source,
            revision=ctx.model_revision,
            trust_remote_code=ctx.trust_remote_code,
        )
        tokenizer.save_pretrained(out_dir)
        return {"steps_s": {"load_and_quantize": t_quant, "save": time.perf_counter() - t0 - t_quant}}

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        from workbench.engines.hf.runner import HFRunner

        ctx = self.ctx
        return HFRunner(ctx, artifact, runtime_knobs)
