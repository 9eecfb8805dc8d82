"""The `vllm` knob vocabulary and options: one set for both ways to run (server and in-process).

Each knob names the vLLM 0.26.0 engine argument it becomes (`FIELD`); the translation in `args.py`
turns knob values into those arguments once, and the server renders them as `vllm serve` flags while
the in-process engine passes them as `AsyncEngineArgs` keywords. A knob left at null ("auto") is not
passed at all, so the baseline is vLLM's own defaults, which it chooses per GPU and usage context;
what it resolved is read back and recorded (`auto_knobs` in the result's engine config).

`kv_cache_fraction` here is `--gpu-memory-utilization`: the share of the **whole** GPU memory vLLM may
use, weights and activations included (the KV cache gets what is left of it), not a share of free
memory for the KV cache as in TensorRT-LLM.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from workbench.engines.server.base import ServeOptions
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef

#: on-the-fly quantization vLLM applies when loading (no build step)
ON_THE_FLY = ("fp8",)
#: study name -> the ModelOpt algorithm the build step runs (engines/trtllm/modelopt_build.ALGORITHMS)
MODELOPT = {"modelopt_fp8": "fp8", "modelopt_nvfp4": "nvfp4", "modelopt_w4a16_awq": "w4a16_awq"}
QUANTIZATIONS = ("none", *ON_THE_FLY, *MODELOPT)
#: weights as vLLM holds them, per quantization (estimate.weight_bytes formats)
WEIGHT_FORMAT = {
    "none": "bf16",
    "fp8": "fp8",
    "modelopt_fp8": "fp8",
    "modelopt_nvfp4": "fp4",
    "modelopt_w4a16_awq": "int4",
}
CUDAGRAPH_MODES = ("NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE")

KNOBS: list[KnobDef] = [
    KnobDef(
        MAX_BATCH_SIZE, "int", False, None, "--max-num-seqs: most sequences per step (null: vLLM's)", low=1
    ),
    KnobDef(
        MAX_NUM_TOKENS,
        "int",
        False,
        None,
        "--max-num-batched-tokens: token budget per step, the chunked-prefill size (null: vLLM's)",
        low=1,
    ),
    KnobDef(
        KV_CACHE_FRACTION,
        "float",
        False,
        None,
        "--gpu-memory-utilization: share of the WHOLE GPU memory, weights included; the KV cache gets "
        "what is left (null: vLLM's 0.92)",
        low=0.0,
        high=1.0,
        low_exclusive=True,
    ),
    KnobDef(
        QUANTIZATION,
        "categorical",
        True,
        "none",
        "--quantization fp8 on the fly, or a ModelOpt checkpoint built and cached (modelopt_*)",
        choices=QUANTIZATIONS,
    ),
    KnobDef(
        "kv_cache_dtype",
        "categorical",
        True,
        "auto",
        "--kv-cache-dtype (fp8: FP8 KV cache; with a modelopt_* build its scales are calibrated)",
        choices=("auto", "fp8", "fp8_e4m3", "fp8_e5m2"),
    ),
    KnobDef("enable_prefix_caching", "bool", False, None, "--enable-prefix-caching (null: vLLM's)"),
    KnobDef(
        "block_size",
        "categorical",
        False,
        None,
        "--block-size: tokens per KV block (null: vLLM's)",
        choices=(16, 32, 64),
    ),
    KnobDef("enforce_eager", "bool", False, False, "--enforce-eager: no CUDA graphs and no torch.compile"),
    KnobDef(
        "cudagraph_mode",
        "categorical",
        False,
        None,
        "--compilation-config '{\"cudagraph_mode\": ...}' (null: vLLM's)",
        choices=CUDAGRAPH_MODES,
    ),
    KnobDef("enable_chunked_prefill", "bool", False, None, "--enable-chunked-prefill (null: vLLM's)"),
    KnobDef(
        "max_num_partial_prefills", "int", False, None, "--max-num-partial-prefills (null: vLLM's)", low=1
    ),
    KnobDef(
        "max_long_partial_prefills", "int", False, None, "--max-long-partial-prefills (null: vLLM's)", low=1
    ),
    KnobDef(
        "long_prefill_token_threshold",
        "int",
        False,
        None,
        "--long-prefill-token-threshold (null: vLLM's)",
        low=0,
    ),
    KnobDef("async_scheduling", "bool", False, None, "--async-scheduling (null: vLLM's)"),
    KnobDef("max_model_len", "int", False, None, "--max-model-len (null: the model's own)", low=1),
]
KNOB_DEFS = {k.name: k for k in KNOBS}

#: study knob -> the EngineArgs field it sets directly (cudagraph_mode and quantization are composite)
FIELD = {
    MAX_BATCH_SIZE: "max_num_seqs",
    MAX_NUM_TOKENS: "max_num_batched_tokens",
    KV_CACHE_FRACTION: "gpu_memory_utilization",
    "kv_cache_dtype": "kv_cache_dtype",
    "enable_prefix_caching": "enable_prefix_caching",
    "block_size": "block_size",
    "enforce_eager": "enforce_eager",
    "enable_chunked_prefill": "enable_chunked_prefill",
    "max_num_partial_prefills": "max_num_partial_prefills",
    "max_long_partial_prefills": "max_long_partial_prefills",
    "long_prefill_token_threshold": "long_prefill_token_threshold",
    "async_scheduling": "async_scheduling",
    "max_model_len": "max_model_len",
}


class VllmOptions(ServeOptions):
    """`engine_options:` of both vLLM engines (the server-only ones are ignored in-process)."""

    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="more vLLM engine arguments by their EngineArgs names (checked against vLLM 0.26.0's)",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="--tensor-parallel-size")
    seed: int = Field(0, description="--seed")
    target_device: Literal["cuda", "cpu"] = Field(
        "cuda",
        description="the device vLLM was built for: cuda (the 0.26.0 wheel) or cpu (a CPU build of vLLM: trials "
        "on a machine without a GPU are then feasible)",
    )
    usage_context: str = Field(
        "OPENAI_API_SERVER",
        description="in-process: the UsageContext vLLM picks its defaults by (OPENAI_API_SERVER: the defaults "
        "`vllm serve` gets, so both ways to run compare like for like; ENGINE_CONTEXT: AsyncLLM's own)",
    )
    calib_dataset: str | None = Field(
        None, description="ModelOpt calibration data (as for trtllm): a folder or JSONL relative to the study"
    )
    calib_allow_hub: bool = False
    calib_samples: int = Field(64, ge=1)
    calib_max_seq_length: int = Field(512, ge=8)
    calib_batch_size: int = Field(8, ge=1)
    calib_text_field: str = "text"
