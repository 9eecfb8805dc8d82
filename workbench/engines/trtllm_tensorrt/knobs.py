"""The `trtllm-tensorrt` engine's knobs and options: TensorRT-LLM 1.2.x's legacy TensorRT-engine backend.

The knobs both TensorRT-LLM engines read are declared once (`trtllm.knobs.COMMON_KNOBS`); here are the
ones only a built TensorRT engine has: its build caps (BuildConfig), its plugins (PluginConfig) and
the extended runtime knobs. Build-time knobs form the build key; runtime knobs are read when a saved
engine is opened, so changing them never rebuilds. The whole package goes when TensorRT-LLM 1.3
(which removed this backend) becomes the floor.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from workbench.engines.trtllm.knobs import (
    BLACKWELL,
    CHUNKING_POLICIES,
    COMMON_KNOBS,
    HOPPER_FP8,
    QUANTIZATIONS,
    SCHEDULER_POLICIES,
    LlmApiOptions,
    Quantization,
    quantization,
)
from workbench.knobs import MAX_BATCH_SIZE, MAX_NUM_TOKENS, KnobDef

__all__ = [
    "BLACKWELL",
    "CHUNKING_POLICIES",
    "GEMM_PLUGIN",
    "HOPPER_FP8",
    "KNOBS",
    "KNOBS_BY_NAME",
    "QUANTIZATIONS",
    "SCHEDULER_POLICIES",
    "Quantization",
    "TensorrtOptions",
    "quantization",
]

GEMM_PLUGIN = ("recommended", "auto", "none")

#: the runtime caps are bounded by the engine's build caps (feasibility says so before a build)
_RUNTIME_CAP_HELP = {
    MAX_BATCH_SIZE: "runtime cap on requests per step (<= engine_max_batch_size)",
    MAX_NUM_TOKENS: "runtime token budget per step = chunk size with chunked prefill (<= engine_max_num_tokens)",
}

TENSORRT_KNOBS: list[KnobDef] = [
    # -- build-time
    KnobDef("engine_max_batch_size", "int", True, 2048, "BuildConfig.max_batch_size", low=1),
    KnobDef("engine_max_num_tokens", "int", True, 8192, "BuildConfig.max_num_tokens", low=1),
    KnobDef("multiple_profiles", "bool", True, True, "PluginConfig.multiple_profiles (tuning guide: on)"),
    KnobDef(
        "gemm_plugin",
        "categorical",
        True,
        "recommended",
        "recommended: 'auto' for bf16/fp16 and INT weights, off for FP8 (tuning guide); auto; none",
        choices=GEMM_PLUGIN,
    ),
    KnobDef(
        "use_fp8_context_fmha",
        "bool",
        True,
        True,
        "ignored: with paged context FMHA the 1.2.x builder decides it (on exactly with an FP8 KV cache), "
        "so it is neither passed nor part of the build key",
    ),
    # -- runtime
    KnobDef("cuda_graph_mode", "bool", False, False, "ExtendedRuntimePerfKnobConfig.cuda_graph_mode"),
    KnobDef("multi_block_mode", "bool", False, True, "ExtendedRuntimePerfKnobConfig.multi_block_mode"),
]

KNOBS: list[KnobDef] = [
    *(replace(k, help=_RUNTIME_CAP_HELP[k.name]) if k.name in _RUNTIME_CAP_HELP else k for k in COMMON_KNOBS),
    *TENSORRT_KNOBS,
]
KNOBS_BY_NAME = {k.name: k for k in KNOBS}


class TensorrtOptions(LlmApiOptions):
    """`engine_options:` of a study using the trtllm-tensorrt engine (settings that are not searched)."""

    cuda_graph_cache_size: int = Field(
        1000, ge=0, description="graphs cached with cuda_graph_mode (trtllm-bench: 1000)"
    )
    calib_batches: int = Field(512, ge=1)
    calib_random_seed: int = 1234
    fast_build: bool = False
    runtime_overhead_gb: float = Field(
        1.5, ge=0, description="CUDA context + TensorRT runtime, for the memory estimate"
    )
