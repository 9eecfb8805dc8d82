"""The `trtllm` engine's knob declarations: the study's names, TensorRT-LLM 1.2.x's meanings.

Quantization names map to TensorRT-LLM's QuantAlgo pairs with the GPU architecture each needs;
scheduler and chunking names map to enum members (by name, so no tensorrt_llm import is needed).
Build-time knobs form the build key; runtime knobs are read when a saved engine is opened.
`TrtllmOptions` is the study's `engine_options:` (settings that are not searched).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef


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
        MAX_BATCH_SIZE,
        "int",
        False,
        2048,
        "runtime cap on requests per step (<= engine_max_batch_size)",
        low=1,
    ),
    KnobDef(
        KV_CACHE_FRACTION,
        "float",
        False,
        0.9,
        "KvCacheConfig.free_gpu_memory_fraction: share of the memory free after the engine loads",
        low=0.0,
        high=0.99,
        low_exclusive=True,
    ),
    KnobDef(
        MAX_NUM_TOKENS,
        "int",
        False,
        8192,
        "runtime token budget per step = chunk size with chunked prefill (<= engine_max_num_tokens)",
        low=1,
    ),
    KnobDef(
        QUANTIZATION,
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
    return QUANTIZATIONS[knobs[QUANTIZATION]]
