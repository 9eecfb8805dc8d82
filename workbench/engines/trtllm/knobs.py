"""The `trtllm` engine's knob declarations: the study's names, TensorRT-LLM 1.2.x's meanings.

`KNOBS` are the PyTorch backend's (`from tensorrt_llm import LLM`, TorchLlmArgs: what trtllm-serve and
trtllm-bench run by default in 1.2.x). `COMMON_KNOBS` are declared once here and read by both
TensorRT-LLM engines: this one and the legacy TensorRT-engine backend, which is its own engine
(`trtllm-tensorrt`, workbench/engines/trtllm_tensorrt/, removed with TensorRT-LLM 1.3) with its
build-time knobs on top.

Quantization names map to TensorRT-LLM's QuantAlgo pairs with the GPU architecture each needs;
scheduler and chunking names map to enum members (by name, so no tensorrt_llm import is needed).
`TrtllmOptions` is the study's `engine_options:` (settings that are not searched); `LlmApiOptions`
holds the fields both engines take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

#: the knobs both TensorRT-LLM engines read, with the same meaning (LLM arguments and KvCacheConfig /
#: SchedulerConfig fields; the TensorRT engine also bakes max_input_len, max_seq_len and tokens_per_block
#: into its build)
COMMON_KNOBS: list[KnobDef] = [
    # -- the four core knobs
    KnobDef(MAX_BATCH_SIZE, "int", False, 2048, "runtime cap on requests per step (max_batch_size)", low=1),
    KnobDef(
        KV_CACHE_FRACTION,
        "float",
        False,
        0.9,
        "KvCacheConfig.free_gpu_memory_fraction: share of the memory free after the model loads",
        low=0.0,
        high=0.99,
        low_exclusive=True,
    ),
    KnobDef(
        MAX_NUM_TOKENS,
        "int",
        False,
        8192,
        "runtime token budget per step = chunk size with chunked prefill (max_num_tokens)",
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
    KnobDef("max_input_len", "int", True, 4096, "max_input_len (5-shot GSM8K needs ~1000)", low=1),
    KnobDef("max_seq_len", "int", True, 4352, "max_seq_len (prompt + output)", low=2),
    KnobDef(
        "tokens_per_block",
        "categorical",
        True,
        32,
        "tokens per KV block (KvCacheConfig / PluginConfig tokens_per_block)",
        choices=(8, 16, 32, 64, 128),
    ),
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
]

#: PyTorch-backend quantizations: the ModelOpt algorithm of the checkpoint and what the GPU must support
TORCH_QUANTIZATIONS: dict[str, Quantization] = {
    "none": QUANTIZATIONS["none"],
    "fp8": QUANTIZATIONS["fp8"],
    "w4a16_awq": QUANTIZATIONS["w4a16_awq"],
    "w4a8_awq": QUANTIZATIONS["w4a8_awq"],
    "nvfp4": QUANTIZATIONS["nvfp4"],
}
#: ModelOpt formats the PyTorch backend of TensorRT-LLM 1.2.1 cannot load, and why (read from its source:
#: NVIDIA/TensorRT-LLM gh-pages@58fb435e 1.2.1/_sources/features/quantization.md.txt, generated from
#: v1.2.1 376f7e1; `_torch/modules/linear.py` get_quant_method of the 1.2 era). Infeasible before any build.
TORCH_REFUSED: dict[str, str] = {
    "int8_sq_per_channel": (
        "quantization int8_sq_per_channel (W8A8 SmoothQuant) does not load on TensorRT-LLM 1.2.1's PyTorch "
        "backend: its linear-layer dispatch has no INT8 weight-and-activation method and raises 'unsupported "
        "quant mode', and its quantization support matrix lists no SmoothQuant; use fp8, w4a16_awq or "
        "w4a8_awq, or the legacy TensorRT backend (engine: trtllm-tensorrt)"
    ),
}
ATTN_BACKENDS = ("TRTLLM", "FLASHINFER")
#: torch_compile choices -> TorchCompileConfig fields (None: no torch_compile_config, TorchLlmArgs' default)
TORCH_COMPILE: dict[str, dict[str, Any] | None] = {
    "off": None,
    "fullgraph": {},
    "piecewise_cuda_graph": {"enable_piecewise_cuda_graph": True},
}

#: cuda_graph_batch_sizes choices: how the captured decode batches are spread up to the largest one
CUDA_GRAPH_BATCH_SIZES = ("auto", "powers_of_two", "dense", "all")


def graph_batch_sizes(choice: str, largest: int) -> list[int] | None:
    """CudaGraphConfig.batch_sizes for a `cuda_graph_batch_sizes` choice; None for auto (not passed)."""
    if choice == "auto":
        return None
    if choice == "all":
        return list(range(1, largest + 1))
    if choice == "powers_of_two":
        sizes = [1 << i for i in range(largest.bit_length()) if 1 << i <= largest]
    else:  # dense
        sizes = [b for b in (1, 2, 4) if b <= largest] + list(range(8, largest + 1, 8))
    return sorted({*sizes, largest})


#: speculative_decoding choices -> the decoding_type of TorchLlmArgs.speculative_config at 1.2.1
#: (DecodingBaseConfig.from_dict; EAGLE-3 is decoding_type Eagle with eagle3_one_model)
SPECULATIVE: dict[str, str | None] = {
    "none": None,
    "mtp": "MTP",
    "eagle3": "Eagle",
    "ngram": "NGram",
    "draft_target": "DraftTarget",
}
#: the modes that draft with a separate model (engine_options.speculative_model)
DRAFT_MODEL_MODES = ("eagle3", "draft_target")

TORCH_KNOBS: list[KnobDef] = [
    KnobDef(
        "kv_cache_dtype",
        "categorical",
        True,
        "auto",
        "KvCacheConfig.dtype; fp8 also calibrates KV scales into a quantized checkpoint (PyTorch backend)",
        choices=("auto", "fp8"),
    ),
    KnobDef("cuda_graphs", "bool", False, True, "cuda_graph_config set (on by default in 1.2.x) or null"),
    KnobDef("cuda_graph_padding", "bool", False, False, "CudaGraphConfig.enable_padding"),
    KnobDef(
        "cuda_graph_max_batch_size",
        "int",
        False,
        128,
        "CudaGraphConfig.max_batch_size: the largest captured decode batch (1.2.x: 0 means 128)",
        low=1,
    ),
    KnobDef(
        "cuda_graph_batch_sizes",
        "categorical",
        False,
        "auto",
        "CudaGraphConfig.batch_sizes, the decode batches captured up to cuda_graph_max_batch_size: auto "
        "(not passed: TensorRT-LLM generates them), powers_of_two (1, 2, 4, ...), dense (1, 2, 4, then "
        "every 8), or all (every size: most graphs, least padding)",
        choices=CUDA_GRAPH_BATCH_SIZES,
    ),
    KnobDef("overlap_scheduler", "bool", False, True, "not disable_overlap_scheduler (PyTorch backend)"),
    KnobDef(
        "attn_backend", "categorical", False, "TRTLLM", "TorchLlmArgs.attn_backend", choices=ATTN_BACKENDS
    ),
    # the knobs 1.2.1 users tune beyond the core (the audit's list, each a TorchLlmArgs / KvCacheConfig
    # field at v1.2.1); null (the default) passes nothing, so TensorRT-LLM's own default holds
    KnobDef(
        "stream_interval",
        "int",
        False,
        None,
        "TorchLlmArgs.stream_interval: iterations per streamed response (1.2.1 default 1; larger for big batches)",
        low=1,
    ),
    KnobDef(
        "batch_wait_timeout_iters",
        "int",
        False,
        None,
        "TorchLlmArgs.batch_wait_timeout_iters: iterations to wait for a fuller batch (default 0; prototype)",
        low=0,
    ),
    KnobDef(
        "batch_wait_max_tokens_ratio",
        "float",
        False,
        None,
        "TorchLlmArgs.batch_wait_max_tokens_ratio: stop waiting at this share of max_num_tokens (0..1; prototype)",
        low=0,
        high=1,
    ),
    KnobDef(
        "host_cache_size",
        "int",
        False,
        None,
        "KvCacheConfig.host_cache_size: bytes of host memory KV blocks are offloaded to (default none)",
        low=0,
    ),
    KnobDef(
        "enable_partial_reuse",
        "bool",
        False,
        None,
        "KvCacheConfig.enable_partial_reuse: reuse a partly matching block (1.2.1 default true)",
    ),
    KnobDef(
        "kv_cache_max_tokens",
        "int",
        False,
        None,
        "KvCacheConfig.max_tokens: cap the KV pool at this many tokens (the smaller of it and the fraction wins)",
        low=1,
    ),
    KnobDef(
        "torch_compile",
        "categorical",
        False,
        "off",
        "TorchLlmArgs.torch_compile_config: off (none), fullgraph (TorchCompileConfig's defaults) or "
        "piecewise_cuda_graph (enable_piecewise_cuda_graph); prototype in 1.2.1",
        choices=TORCH_COMPILE,
    ),
    # speculative decoding (TorchLlmArgs.speculative_config; the classes read at v1.2.1, api/)
    KnobDef(
        "speculative_decoding",
        "categorical",
        False,
        "none",
        "speculative_config: none; mtp (the checkpoint's own MTP layers); eagle3 (an EAGLE-3 draft model, "
        "engine_options.speculative_model); ngram (drafts from the request's own tokens); draft_target (a "
        "draft model, engine_options.speculative_model)",
        choices=tuple(SPECULATIVE),
    ),
    KnobDef(
        "max_draft_len",
        "int",
        False,
        None,
        "draft tokens per step: max_draft_len (eagle3, ngram, draft_target: required), or MTP's "
        "num_nextn_predict_layers (null: 1)",
        low=1,
    ),
    KnobDef(
        "max_matching_ngram_size",
        "int",
        False,
        None,
        "NGramDecodingConfig.max_matching_ngram_size: the longest n-gram matched (ngram: required)",
        low=1,
    ),
]
#: the PyTorch backend's quantization knob: the checkpoints it loads, and the ModelOpt formats it
#: refuses (infeasible with the reason, before any build)
TORCH_QUANTIZATION_KNOB = KnobDef(
    QUANTIZATION,
    "categorical",
    True,
    "none",
    "the checkpoint's ModelOpt quantization (built in the build step, or engine_options.checkpoints)",
    choices=(*TORCH_QUANTIZATIONS, *TORCH_REFUSED),
)
#: the `trtllm` engine's knobs (PyTorch backend)
KNOBS: list[KnobDef] = [
    *(TORCH_QUANTIZATION_KNOB if k.name == QUANTIZATION else k for k in COMMON_KNOBS),
    *TORCH_KNOBS,
]
KNOBS_BY_NAME = {k.name: k for k in KNOBS}


class LlmApiOptions(BaseModel):
    """`engine_options:` both TensorRT-LLM engines take (settings that are not searched)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model (tensor parallelism)")
    calib_dataset: str | None = Field(
        None,
        description="calibration data, relative to the study file: a folder (train.jsonl/*.jsonl/*.txt, or "
        "a `datasets` save_to_disk folder) or a JSONL file with a text field; a hub dataset name only "
        "with calib_allow_hub (trtllm-tensorrt: pileval, *cnn_dailymail*, *scienceqa*); unset: "
        "cnn_dailymail from the hub, only with calib_allow_hub",
    )
    calib_text_field: str = Field("text", description="the text field of JSONL calibration records")
    calib_allow_hub: bool = Field(False, description="calibration data may come from the hub")
    calib_batch_size: int = Field(1, ge=1)
    calib_max_seq_length: int = Field(512, ge=1)
    trtllm_serve: str = Field("trtllm-serve", description="the trtllm-serve executable, for export")
    trtllm_bench: str = Field("trtllm-bench", description="the trtllm-bench executable, for crosscheck")
    memory_settle_timeout_s: float = Field(
        60.0, gt=0, description="after shutdown, wait this long for GPU memory to return to the baseline"
    )


class TrtllmOptions(LlmApiOptions):
    """`engine_options:` of a study using the trtllm engine (PyTorch backend)."""

    calib_samples: int = Field(512, ge=1, description="calibration samples (ModelOpt)")
    speculative_model: str | None = Field(
        None,
        description="the draft model of speculative_decoding eagle3 / draft_target (DecodingBaseConfig."
        "speculative_model): a hub id or an absolute path",
    )
    checkpoints: dict[str, str] = Field(
        default_factory=dict,
        description="quantization choice -> pre-quantized checkpoint (hub id or path relative to the study "
        "file) used instead of a ModelOpt build",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_backend_switch(cls, data: Any) -> Any:
        if isinstance(data, dict) and "backend" in data:
            if data["backend"] == "tensorrt":
                raise ValueError(
                    "`backend: tensorrt` is its own engine now: write `engine: trtllm-tensorrt` and drop "
                    "engine_options.backend (the legacy TensorRT-engine backend, removed in TensorRT-LLM 1.3)"
                )
            raise ValueError(
                "engine_options.backend is gone: the trtllm engine is TensorRT-LLM's PyTorch backend "
                "(drop the key); the legacy TensorRT backend is `engine: trtllm-tensorrt`"
            )
        return data


def quantization(knobs: dict[str, Any]) -> Quantization:
    return QUANTIZATIONS[knobs[QUANTIZATION]]
