"""Record the vLLM API the workbench's `vllm` engine relies on, from an installed vllm.

    python scripts/record_vllm_api.py --out workbench/engines/vllm/api/vllm-0.26.0.json \
        [--wheel path/to/vllm-X.whl] [--simulate h200|none]

Why: CI has no vLLM, so every argument our code emits is checked against a snapshot recorded
from vLLM itself. This script imports vllm and introspects it: the EngineArgs / AsyncEngineArgs
dataclass fields, the argparse actions of `EngineArgs.add_cli_args` and of the `vllm serve`
subcommand, SamplingParams (a msgspec struct), enums, signatures of what an in-process runner
calls, quantization methods and their minimum capability, the ModelOpt quant_algo values, the
Prometheus series that PrometheusStatLogger registers, and the resolved defaults of
`create_engine_config` for a tiny local Llama config (no weights, no download).

On a machine without a GPU it (1) builds a stub libcuda.so.1 whose calls all return
CUDA_ERROR_NO_DEVICE, so vllm's CUDA extension modules import, and re-executes itself with it on
LD_LIBRARY_PATH; (2) installs vllm's real CudaPlatform with the device capability, memory and name
of the GPU named by --simulate (default h200), so the parser and default resolution see the same
platform as on that GPU. On a GPU machine nothing is stubbed or patched. The snapshot's "method"
says which happened.
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import dataclasses
import datetime
import enum
import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SCHEMA = "workbench.vllm_api_snapshot/1"
STUB_ENV = "WORKBENCH_VLLM_CUDA_STUB"
#: device facts per simulated GPU: (capability major, minor, total memory bytes, device name).
SIMULATED: dict[str, tuple[int, int, int, str]] = {
    "h200": (9, 0, 150_119_874_560, "NVIDIA H200"),
    "h100": (9, 0, 85_029_158_912, "NVIDIA H100 80GB HBM3"),
    "a100": (8, 0, 85_094_825_984, "NVIDIA A100-SXM4-80GB"),
}
STUB_SYMBOLS = [
    "cuInit",
    "cuDriverGetVersion",
    "cuDeviceGet",
    "cuDeviceGetCount",
    "cuDeviceGetAttribute",
    "cuCtxGetCurrent",
    "cuCtxSetCurrent",
    "cuDevicePrimaryCtxRetain",
    "cuGetProcAddress",
    "cuGetProcAddress_v2",
    "cuMemAddressFree",
    "cuMemAddressReserve",
    "cuMemCreate",
    "cuMemGetAllocationGranularity",
    "cuMemMap",
    "cuMemRelease",
    "cuMemSetAccess",
    "cuMemUnmap",
    "cuPointerGetAttribute",
    "cuTensorMapEncodeTiled",
]
#: the config fields an in-process runner may read after creation.
CONFIG_FIELDS = {
    "CacheConfig": [
        "num_gpu_blocks",
        "block_size",
        "cache_dtype",
        "enable_prefix_caching",
        "gpu_memory_utilization",
        "kv_cache_size_tokens",
        "kv_cache_max_concurrency",
        "num_gpu_blocks_override",
        "kv_cache_memory_bytes",
    ],
    "SchedulerConfig": [
        "max_num_seqs",
        "max_num_batched_tokens",
        "enable_chunked_prefill",
        "max_num_partial_prefills",
        "max_long_partial_prefills",
        "long_prefill_token_threshold",
        "async_scheduling",
        "max_model_len",
    ],
    "ModelConfig": [
        "max_model_len",
        "dtype",
        "tokenizer",
        "served_model_name",
        "seed",
        "quantization",
        "enforce_eager",
        "skip_tokenizer_init",
    ],
}
#: format strings our code may parse from vLLM's log, and where the string is expected.
LOG_LINES = {
    "kv_cache_tokens": ("GPU KV cache size: %s tokens", "vllm/v1/core/kv_cache_utils.py"),
    "max_concurrency": (
        "Maximum concurrency for %s tokens per request: %.2fx",
        "vllm/v1/core/kv_cache_utils.py",
    ),
    "chunked_prefill": (
        "Chunked prefill is enabled with max_num_batched_tokens=%d.",
        "vllm/config/scheduler.py",
    ),
    "non_default_args": ("non-default args: %s", "vllm/entrypoints/serve/utils/api_utils.py"),
    "available_kv_memory": ("Available KV cache memory: %s GiB", "vllm/v1/worker/gpu_worker.py"),
    "async_scheduling": ("Asynchronous scheduling is %s.", "vllm/config/vllm.py"),
    "num_gpu_blocks": (
        "%d Engines: vllm cache_config_info with initialization ",
        "vllm/v1/metrics/loggers.py",
    ),
    "block_size_for_backend": (
        "Setting kv cache block size to %d for %s backend.",
        "vllm/platforms/interface.py",
    ),
    "max_model_len": ("Using max model len %s", "vllm/config/model.py"),
}
TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
    "rms_norm_eps": 1e-5,
}
#: facts read from vLLM's source: (what, path, an exact string of that file the fact rests on).
#: The script checks each anchor in the installed vllm and records its line, or found=false.
FACTS: list[tuple[str, str, str]] = [
    (
        "Batch defaults when max_num_seqs / max_num_batched_tokens are None: a device with >= 70 GiB whose "
        "name lacks 'a100' (H100, H200, MI300x) gets max_num_batched_tokens 16384 (LLM_CLASS) / 8192 "
        "(OPENAI_API_SERVER) and max_num_seqs 1024 / 1024; any other GPU 8192 / 2048 and 256 / 256. Any other "
        "usage context falls back to SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS=2048 and "
        "DEFAULT_MAX_NUM_SEQS=128.",
        "vllm/engine/arg_utils.py",
        'if device_memory >= 70 * GiB_bytes and "a100" not in device_name:',
    ),
    (
        "AsyncLLM.from_engine_args defaults usage_context to UsageContext.ENGINE_CONTEXT, so an in-process "
        "runner that does not pass usage_context=UsageContext.OPENAI_API_SERVER gets max_num_seqs 128 / "
        "max_num_batched_tokens 2048, not the 1024 / 8192 of `vllm serve` on an H200.",
        "vllm/v1/engine/async_llm.py",
        "usage_context: UsageContext = UsageContext.ENGINE_CONTEXT,",
    ),
    (
        "performance_mode='throughput' doubles the defaulted max_num_batched_tokens and max_num_seqs.",
        "vllm/engine/arg_utils.py",
        'if self.performance_mode == "throughput":',
    ),
    (
        "With defaulted max_num_batched_tokens: if chunked prefill is off it becomes max(max_model_len, "
        "default); then min(max_num_seqs * max_model_len, it). A defaulted max_num_seqs becomes "
        "min(max_num_seqs, max_num_batched_tokens).",
        "vllm/engine/arg_utils.py",
        "self.max_num_seqs * model_config.max_model_len,",
    ),
    (
        "enable_chunked_prefill None -> model_config.is_chunked_prefill_supported; enable_prefix_caching None "
        "-> is_prefix_caching_supported and not is_hybrid (both True for a plain decoder LLM).",
        "vllm/engine/arg_utils.py",
        "default_prefix_caching = (",
    ),
    (
        "async_scheduling None -> True unless a pooling model, non-EAGLE/MTP/ngram-GPU/dspark speculative "
        "decoding, disable_padded_drafter_batch, an executor without async support, or ROCm DeepEP-HT DBO.",
        "vllm/config/vllm.py",
        "# Enable async scheduling unless there is an incompatible option.",
    ),
    (
        "block_size: EngineArgs default None -> CacheConfig.DEFAULT_BLOCK_SIZE (16); any int > 0 is accepted "
        "(no choices list); unless --block-size was given, the attention backend's preferred block size "
        "replaces it when the worker starts, and hybrid models may override even a user value.",
        "vllm/platforms/interface.py",
        "preferred = backend_cls.get_preferred_block_size(",
    ),
    (
        "CacheConfig.block_size is Field(default=None, gt=0).",
        "vllm/config/cache.py",
        "block_size: int = Field(default=None, gt=0)",
    ),
    (
        "max_num_partial_prefills > 1 with long_prefill_token_threshold 0 sets the threshold to "
        "int(max_model_len * 0.04); max_long_partial_prefills must be <= max_num_partial_prefills.",
        "vllm/config/scheduler.py",
        "self.long_prefill_token_threshold = int(max_model_len * 0.04)",
    ),
    (
        "A quantization method is refused when the GPU capability is below its get_min_capability().",
        "vllm/config/vllm.py",
        "if capability < quant_config.get_min_capability():",
    ),
    (
        "ModelOpt FP8 (quantization 'modelopt', quant_algo FP8 / FP8_PER_CHANNEL_PER_TOKEN / FP8_PB_WO) needs "
        "capability 89: loads natively on Hopper (90).",
        "vllm/model_executor/layers/quantization/modelopt.py",
        "class ModelOptFp8Config(ModelOptQuantConfigBase):",
    ),
    (
        "ModelOpt NVFP4 ('modelopt_fp4', quant_algo NVFP4 or W4A16_NVFP4) has min capability 75, so it loads "
        "on Hopper; but on SM90 the NVFP4 linear auto-selection skips FlashInfer CuteDSL (sm_10x), FlashInfer "
        "CUTLASS (>= sm_100) and vLLM CUTLASS FP4 (cutlass_scaled_mm_supports_fp4(90) is False) and picks "
        "MarlinNvFp4LinearKernel: weight-only FP4 (W4A16), activations stay bf16/fp16.",
        "vllm/model_executor/kernels/linear/nvfp4/marlin.py",
        '"Your GPU does not have native support for FP4 computation but "',
    ),
    (
        "ModelOpt MXFP8 ('modelopt_mxfp8') min capability 80 via the Marlin kernel.",
        "vllm/model_executor/layers/quantization/modelopt.py",
        "# Marlin kernel supports MXFP8 on SM80+",
    ),
    (
        "ModelOpt MIXED_PRECISION ('modelopt_mixed') min capability 75 and needs a non-empty quantized_layers "
        "mapping.",
        "vllm/model_executor/layers/quantization/modelopt.py",
        'if algo is not None and algo == "MIXED_PRECISION":',
    ),
    (
        "ModelOpt quant_algo values outside QUANT_ALGOS (e.g. W4A16_AWQ, W4A8_AWQ, INT4_AWQ, INT8_SQ, "
        "NVFP4_AWQ) are rejected with ValueError 'ModelOpt currently only supports: ...'.",
        "vllm/model_executor/layers/quantization/modelopt.py",
        "ModelOpt currently only supports",
    ),
    (
        "vLLM's own 'fp8' method has min capability 75: below 89 (no native FP8) it runs FP8 weights through "
        "the Marlin W8A16 fallback.",
        "vllm/model_executor/layers/quantization/utils/marlin_utils_fp8.py",
        '"Your GPU does not have native support for FP8 computation but "',
    ),
    (
        "RequestOutput.metrics is a RequestStateStats only when stats are logged (disable_log_stats False); "
        "arrival_time is frontend wall-clock, queued_ts / scheduled_ts / first_token_ts / last_token_ts are "
        "engine-core monotonic timestamps, first_token_latency is seconds.",
        "vllm/v1/engine/output_processor.py",
        "self.stats = RequestStateStats(arrival_time=arrival_time) if log_stats else None",
    ),
    (
        "SamplingParams.output_kind defaults to RequestOutputKind.CUMULATIVE; DELTA yields only new tokens per "
        "RequestOutput, FINAL_ONLY only the last.",
        "vllm/sampling_params.py",
        "output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE",
    ),
    (
        "AsyncLLM has no get_vllm_config(); the resolved VllmConfig is the attribute AsyncLLM.vllm_config. "
        "After the engine-core handshake the frontend copy gets num_gpu_blocks (summed over DP engines), "
        "block_size, kv_cache_size_tokens, kv_cache_max_concurrency and a possibly lowered max_model_len.",
        "vllm/v1/engine/core_client.py",
        "cache_config.kv_cache_size_tokens = (",
    ),
    (
        "AsyncLLM.shutdown(timeout=None) is synchronous: stops prometheus, the renderer, the engine-core "
        "client (background process) and cancels the output handler; __del__ calls it too.",
        "vllm/v1/engine/async_llm.py",
        "def shutdown(self, timeout: float | None = None) -> None:",
    ),
    (
        "vllm:cache_config_info is a gauge fixed at 1 whose labels are every CacheConfig.__dict__ entry as a "
        "string (block_size, num_gpu_blocks, kv_cache_size_tokens, kv_cache_max_concurrency, "
        "gpu_memory_utilization, cache_dtype, enable_prefix_caching, ...) plus 'engine'; no model_name label. "
        "It is set once in log_engine_initialized, after the handshake, so num_gpu_blocks is filled in.",
        "vllm/config/cache.py",
        "return {key: str(value) for key, value in self.__dict__.items()}",
    ),
    (
        "No Prometheus series exposes scheduler config (max_num_seqs / max_num_batched_tokens); the KV-cache "
        "token capacity is only the kv_cache_size_tokens label of vllm:cache_config_info.",
        "vllm/v1/metrics/loggers.py",
        'name = "vllm:cache_config_info"',
    ),
    (
        "GET /server_info (whole VllmConfig as text or ?config_format=json, plus VLLM_* env) and the other dev "
        "routes exist only with VLLM_SERVER_DEV_MODE=1.",
        "vllm/entrypoints/openai/api_server.py",
        "if envs.VLLM_SERVER_DEV_MODE:",
    ),
    (
        "GET /v1/models ModelCard has max_model_len (plus id, root, parent, owned_by, created).",
        "vllm/entrypoints/openai/engine/protocol.py",
        "max_model_len: int | None = None",
    ),
    (
        "cudagraph_mode accepts the CUDAGraphMode member name as a string (upper-cased), e.g. in "
        '--compilation-config \'{"cudagraph_mode": "FULL_DECODE_ONLY"}\' or -cc.cudagraph_mode=PIECEWISE.',
        "vllm/config/compilation.py",
        "return CUDAGraphMode[value.upper()]",
    ),
    (
        "-O<n> / -O <n> / -O=<n> is rewritten to --optimization-level <n> by FlexibleArgumentParser.",
        "vllm/utils/argparse_utils.py",
        "# Convert -O <n> to --optimization-level <n>",
    ),
]
SERVER_INFO = (
    "`vllm serve` exposes its resolved config structurally in three places: (1) GET /v1/models -> "
    "data[].max_model_len (ModelCard, vllm/entrypoints/openai/engine/protocol.py); (2) GET /metrics -> "
    "vllm:cache_config_info{block_size, num_gpu_blocks, kv_cache_size_tokens, kv_cache_max_concurrency, "
    "gpu_memory_utilization, cache_dtype, enable_prefix_caching, ..., engine} = 1 (vllm/v1/metrics/loggers.py "
    "log_metrics_info; labels = CacheConfig.metrics_info()), which is where the resolved KV-cache token count "
    "(kv_cache_size_tokens, group-aware, per DP engine) and num_gpu_blocks * block_size can be read; no series "
    "carries max_num_seqs or max_num_batched_tokens; (3) GET /server_info (text, or ?config_format=json for the "
    "whole VllmConfig incl. scheduler_config.max_num_seqs / max_num_batched_tokens) only when the env var "
    "VLLM_SERVER_DEV_MODE=1 (vllm/entrypoints/openai/api_server.py registers the dev routers; "
    "vllm/entrypoints/serve/dev/server_info/api_router.py). Otherwise the scheduler values come from the log: "
    "'non-default args: %s' (only what was set), 'Chunked prefill is enabled with max_num_batched_tokens=%d.', "
    "and 'Initializing a V1 LLM engine (v%s) with config: %s' (vllm/v1/engine/core.py; VllmConfig.__str__ has "
    "max_seq_len, enable_prefix_caching, enable_chunked_prefill, compilation_config but not max_num_seqs)."
)
DEFAULTS_WHAT = (
    "How EngineArgs.create_engine_config resolves knobs left None: max_num_seqs / max_num_batched_tokens by "
    "usage context and device memory (get_batch_defaults, _set_default_max_num_seqs_and_batched_tokens_args); "
    "enable_chunked_prefill / enable_prefix_caching from the model "
    "(_set_default_chunked_prefill_and_prefix_caching_args); async_scheduling in "
    "VllmConfig.__post_init__ (vllm/config/vllm.py); block_size from CacheConfig and the "
    "attention backend."
)
DEFAULTS_RULE = (
    "max_num_batched_tokens / max_num_seqs None -> get_batch_defaults(world_size=tp*pp): if "
    "current_platform.get_device_total_memory() >= 70 GiB and 'a100' not in the device name: "
    "{LLM_CLASS: 16384, OPENAI_API_SERVER: 8192} tokens, {LLM_CLASS: 1024, OPENAI_API_SERVER: 1024} seqs; "
    "else {8192, 2048} and {256, 256}; other contexts (ENGINE_CONTEXT, the AsyncLLM.from_engine_args default) "
    "-> 2048 / 128. performance_mode='throughput' doubles defaulted values. If chunked prefill is off, "
    "tokens = max(max_model_len, tokens); then tokens = min(max_num_seqs*max_model_len, tokens); "
    "seqs = min(seqs, tokens). So an H200 (≈140 GiB) under `vllm serve`: max_num_seqs 1024, "
    "max_num_batched_tokens 8192. enable_chunked_prefill None -> model supports it (True for decoder LLMs); "
    "enable_prefix_caching None -> supported and not hybrid (True for plain LLMs); async_scheduling None -> "
    "True unless pooling / unsupported spec-decode / executor; block_size None -> 16, then the attention "
    "backend's preferred size at worker start unless --block-size was given; long_prefill_token_threshold 0 "
    "-> int(0.04*max_model_len) when max_num_partial_prefills > 1."
)
METRIC_NAME = re.compile(r"^vllm:[a-z0-9_]+$")
METRIC_MODULES = (
    "vllm/v1/metrics/loggers.py",
    "vllm/v1/spec_decode/metrics.py",
    "vllm/v1/metrics/perf.py",
    "vllm/distributed/kv_transfer/kv_connector/v1/metrics.py",
)


# ----------------------------------------------------------------------------- environment


def ensure_cuda_driver_loadable() -> None:
    """Re-exec with a stub libcuda.so.1 when none loads: vllm's CUDA extensions link against it."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return
    except OSError:
        if os.environ.get(STUB_ENV):
            raise
    stub_dir = Path(tempfile.mkdtemp(prefix="vllm-cuda-stub-"))
    body = [f"int {name}(void) {{ return 100; }}" for name in STUB_SYMBOLS]
    body.append('int cuGetErrorString(int e, const char **s) { if (s) *s = "stub"; return 0; }')
    (stub_dir / "stub.c").write_text("\n".join(body) + "\n")
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libcuda.so.1",
            "-o",
            str(stub_dir / "libcuda.so.1"),
            str(stub_dir / "stub.c"),
        ],
        check=True,
    )
    env = dict(os.environ, **{STUB_ENV: str(stub_dir)})
    env["LD_LIBRARY_PATH"] = f"{stub_dir}:{env.get('LD_LIBRARY_PATH', '')}"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def install_platform(simulate: str) -> str:
    """Make vllm's current_platform the real CUDA platform; patch device facts when no GPU exists."""
    import torch
    import vllm.platforms as platforms

    if torch.cuda.is_available():
        from vllm.platforms import current_platform

        return f"real GPU: {current_platform.get_device_name()}"
    from vllm.platforms.cuda import CudaPlatform
    from vllm.platforms.interface import DeviceCapability

    major, minor, memory, name = SIMULATED[simulate]
    cls: Any = CudaPlatform
    cls.get_device_capability = classmethod(lambda c, device_id=0: DeviceCapability(major, minor))
    cls.get_device_total_memory = classmethod(lambda c, device_id=0: memory)
    cls.get_device_name = classmethod(lambda c, device_id=0: name)
    platforms.current_platform = cls()
    return (
        f"no GPU: vllm.platforms.cuda.{type(platforms.current_platform).__name__} with simulated "
        f"{name} (capability {major}.{minor}, {memory} bytes)"
    )


# ----------------------------------------------------------------------------- json helpers


def type_str(ann: Any) -> str:
    """An annotation as a string: strings stay, classes by name, typing forms by their repr."""
    if isinstance(ann, str):
        return ann
    if isinstance(ann, type) and typing.get_origin(ann) is None:
        return ann.__name__
    return str(ann).replace("typing.", "").replace("vllm.config.", "")


def to_json(value: Any, depth: int = 0) -> Any:
    """A default as JSON; enums by name, configs by class name, the rest by a short repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple, set, frozenset)) and depth < 2:
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [to_json(v, depth + 1) for v in items]
    if isinstance(value, dict) and depth < 2:
        return {str(k): to_json(v, depth + 1) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return {"__class__": type(value).__name__}
    if isinstance(value, type):
        return {"__class__": value.__name__}
    return {"__repr__": repr(value)[:120]}


def field_default(f: dataclasses.Field) -> Any:
    """A dataclass field's default, calling a default_factory (the value a caller would get)."""
    if type(f.default).__name__ == "FieldInfo":  # pydantic Field(default=..., gt=...) on a config
        return to_json(getattr(f.default, "default", None))
    if f.default is not dataclasses.MISSING:
        return to_json(f.default)
    if f.default_factory is not dataclasses.MISSING:
        try:
            return to_json(f.default_factory())
        except Exception as exc:  # noqa: BLE001 - record why instead of failing the snapshot
            return {"__factory_error__": f"{type(exc).__name__}: {exc}"[:160]}
    return None


def source_path(obj: Any) -> str:
    """The repo-relative path (vllm/...) of the module that defines obj."""
    path = Path(inspect.getfile(obj))
    parts = path.parts
    return "/".join(parts[len(parts) - parts[::-1].index("vllm") - 1 :])


# ----------------------------------------------------------------------------- parsers


def action_type(action: argparse.Action) -> str:
    """int|float|str|flag|bool|json: what a value given for this option must be."""
    kind = type(action).__name__
    if kind in ("_StoreTrueAction", "_StoreFalseAction", "_StoreConstAction", "_CountAction"):
        return "flag"
    if isinstance(action, argparse.BooleanOptionalAction):
        return "bool"
    return value_type(action.type)


def value_type(fn: Any) -> str:
    """The value type behind vLLM's argparse converters (optional_type(int) -> int, json -> json)."""
    if fn is None or fn is str:
        return "str"
    if fn in (int, float):
        return fn.__name__
    name = getattr(fn, "__name__", type(fn).__name__)
    if name in ("parse_dataclass", "union_dict_and_str", "loads") or "json" in name.lower():
        return "json"
    if name.startswith("human_readable_int"):
        return "int"
    inner = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if callable(c.cell_contents)]
    if name in ("_optional_type", "_parse_type") and inner:
        return value_type(inner[0])
    return "str"


def describe_action(action: argparse.Action) -> dict[str, Any]:
    """One option's dest, type, choices, default, nargs and argparse action class."""
    choices = list(action.choices) if action.choices is not None else None
    return {
        "dest": action.dest,
        "type": action_type(action),
        "type_fn": getattr(action.type, "__qualname__", None) if action.type else None,
        "optional": getattr(action.type, "__name__", "") == "_optional_type",
        "choices": to_json(choices),
        "default": to_json(action.default),
        "nargs": to_json(action.nargs),
        "action": type(action).__name__,
    }


def options_of(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """Every option string of a parser (aliases and --no-X included) mapped to its action."""
    out: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        strings = action.option_strings or [action.dest]
        for opt in strings:
            out[opt] = describe_action(action) | {"aliases": [s for s in strings if s != opt]}
    return dict(sorted(out.items()))


def engine_parser() -> argparse.ArgumentParser:
    """AsyncEngineArgs.add_cli_args: the engine options (EngineArgs' plus --enable-log-requests)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return AsyncEngineArgs.add_cli_args(FlexibleArgumentParser())


def serve_parser() -> argparse.ArgumentParser:
    """The parser of the `vllm serve` subcommand, built the way the vllm CLI builds it."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    subparsers = FlexibleArgumentParser(prog="vllm").add_subparsers()
    return ServeSubcommand().subparser_init(subparsers)


def parse_checks(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """What the serve parser makes of the argument forms our code emits (real parse_args calls)."""
    forms = {
        "cudagraph_json": ["--compilation-config", '{"cudagraph_mode": "FULL_DECODE_ONLY"}'],
        "cudagraph_dotted": ["-cc.cudagraph_mode=PIECEWISE"],
        "optimization_O0": ["-O0"],
        "enforce_eager": ["--enforce-eager"],
        "no_prefix_caching": ["--no-enable-prefix-caching"],
        "no_async_scheduling": ["--no-async-scheduling"],
        "load_format_dummy": ["--load-format", "dummy"],
        "kv_cache_dtype_fp8": ["--kv-cache-dtype", "fp8"],
        "block_size_32": ["--block-size", "32"],
    }
    keys = (
        "compilation_config",
        "optimization_level",
        "enforce_eager",
        "enable_prefix_caching",
        "async_scheduling",
        "load_format",
        "kv_cache_dtype",
        "block_size",
    )
    out: dict[str, Any] = {}
    for name, argv in forms.items():
        try:
            ns = vars(parser.parse_args(["/m", *argv]))
            parsed = {k: to_json(ns.get(k), 1) for k in keys if k in ns}
            cc = ns.get("compilation_config")
            parsed["compilation_config"] = {
                "cudagraph_mode": to_json(getattr(cc, "cudagraph_mode", None)),
                "mode": to_json(getattr(cc, "mode", None)),
            }
            out[name] = {"argv": argv, "parsed": parsed}
        except (SystemExit, Exception) as exc:  # noqa: BLE001
            out[name] = {"argv": argv, "error": repr(exc)[:200]}
    return out


# ----------------------------------------------------------------------------- engine args


def engine_args(engine_opts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """AsyncEngineArgs dataclass fields with their CLI flags, --no-X negation and choices."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    by_dest: dict[str, list[str]] = {}
    for opt, desc in engine_opts.items():
        by_dest.setdefault(desc["dest"], []).append(opt)
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(AsyncEngineArgs):
        flags = sorted(by_dest.get(f.name, []))
        negation = next((o for o in flags if o.startswith("--no-")), None)
        choices = next((engine_opts[o]["choices"] for o in flags if engine_opts[o]["choices"]), None)
        out[f.name] = {
            "type": type_str(f.type),
            "default": field_default(f),
            "flags": [o for o in flags if o != negation],
            "negation": negation,
            "choices": choices,
            "init": f.init,
        }
    return out


# ----------------------------------------------------------------------------- sampling, enums, classes


def sampling_params() -> dict[str, dict[str, Any]]:
    """vllm.SamplingParams fields: a msgspec Struct, so msgspec.structs.fields is the truth."""
    import msgspec
    from vllm import SamplingParams

    out: dict[str, dict[str, Any]] = {}
    for f in msgspec.structs.fields(SamplingParams):
        default = f.default if f.default is not msgspec.NODEFAULT else None
        if f.default_factory is not msgspec.NODEFAULT:
            default = f.default_factory()
        out[f.name] = {"type": type_str(f.type), "default": to_json(default)}
    return out


def enums() -> dict[str, list[str]]:
    """Member names of the enums our code passes by name."""
    from vllm.config.compilation import CompilationMode, CUDAGraphMode
    from vllm.config.vllm import OptimizationLevel
    from vllm.sampling_params import RequestOutputKind
    from vllm.usage.usage_lib import UsageContext

    found = (RequestOutputKind, CUDAGraphMode, CompilationMode, OptimizationLevel, UsageContext)
    return {e.__name__: [m.name for m in e] for e in found}


def params_of(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """A callable's parameters with kind, annotation and default."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        item: dict[str, Any] = {"name": p.name, "kind": p.kind.name}
        if p.annotation is not inspect.Parameter.empty:
            item["type"] = type_str(p.annotation)
        if p.default is not inspect.Parameter.empty:
            item["default"] = to_json(p.default)
        out.append(item)
    return out


def self_attributes(cls: type) -> list[str]:
    """Names assigned as self.X in cls.__init__: the instance attributes a caller may read."""
    tree = ast.parse(inspect.getsource(cls.__init__).strip().replace("\n    ", "\n"))
    names = {
        t.attr
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    return sorted(names)


def dataclass_fields(cls: type, selected: list[str] | None = None) -> dict[str, Any]:
    """Field names of a (pydantic) dataclass, plus type and default of the selected ones."""
    fields = dataclasses.fields(cls)
    out: dict[str, Any] = {
        "import": cls.__module__,
        "path": source_path(cls),
        "fields": [f.name for f in fields],
    }
    if selected is not None:
        known = {f.name: f for f in fields}
        out["selected"] = {
            n: (
                {"type": type_str(known[n].type), "default": field_default(known[n]), "init": known[n].init}
                if n in known
                else None
            )
            for n in selected
        }
    return out


def async_llm_classes() -> dict[str, Any]:
    """AsyncLLM's factory, request and lifecycle methods, and where VllmConfig lives on it."""
    from vllm.v1.engine.async_llm import AsyncLLM

    mod = {"import": "vllm.v1.engine.async_llm", "path": source_path(AsyncLLM)}
    names = (
        "from_engine_args",
        "from_vllm_config",
        "generate",
        "add_request",
        "abort",
        "shutdown",
        "check_health",
        "reset_prefix_cache",
        "get_tokenizer",
        "do_log_stats",
        "get_supported_tasks",
    )
    out = {
        f"AsyncLLM.{n}": mod
        | {
            "async": inspect.iscoroutinefunction(getattr(AsyncLLM, n))
            or inspect.isasyncgenfunction(getattr(AsyncLLM, n)),
            "params": params_of(getattr(AsyncLLM, n)),
        }
        for n in names
        if hasattr(AsyncLLM, n)
    }
    out["AsyncLLM.get_vllm_config"] = mod | {
        "exists": hasattr(AsyncLLM, "get_vllm_config"),
        "instead": "instance attribute AsyncLLM.vllm_config",
    }
    out["AsyncLLM.__init__"] = mod | {
        "params": params_of(AsyncLLM.__init__),
        "instance_attributes": self_attributes(AsyncLLM),
    }
    out["AsyncLLM.properties"] = mod | {
        "names": sorted(n for n, v in inspect.getmembers(AsyncLLM) if isinstance(v, property))
    }
    return out


def output_classes() -> dict[str, Any]:
    """RequestOutput / CompletionOutput / RequestStateStats and TokensPrompt keys."""
    from vllm import CompletionOutput, RequestOutput, TokensPrompt
    from vllm.v1.metrics.stats import RequestStateStats

    stats = dataclass_fields(RequestStateStats)
    stats["defaults"] = {f.name: field_default(f) for f in dataclasses.fields(RequestStateStats)}
    return {
        "TokensPrompt": {
            "import": "vllm.inputs",
            "keys": sorted(TokensPrompt.__annotations__),
            "required": sorted(TokensPrompt.__required_keys__),
        },
        "RequestOutput": {
            "import": "vllm.outputs",
            "path": source_path(RequestOutput),
            "fields": [p["name"] for p in params_of(RequestOutput.__init__)[1:]],
            "params": params_of(RequestOutput.__init__),
        },
        "CompletionOutput": dataclass_fields(CompletionOutput),
        "RequestStateStats": stats,
    }


def config_classes() -> dict[str, Any]:
    """VllmConfig's sub-configs a runner reads after creation (fields and the selected defaults)."""
    from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig

    found = {"CacheConfig": CacheConfig, "SchedulerConfig": SchedulerConfig, "ModelConfig": ModelConfig}
    out = {name: dataclass_fields(cls, CONFIG_FIELDS[name]) for name, cls in found.items()}
    out["VllmConfig"] = {"import": "vllm.config", "fields": [f.name for f in dataclasses.fields(VllmConfig)]}
    out["CacheConfig"]["DEFAULT_BLOCK_SIZE"] = CacheConfig.DEFAULT_BLOCK_SIZE
    for const in ("DEFAULT_MAX_NUM_BATCHED_TOKENS", "DEFAULT_MAX_NUM_SEQS"):
        out["SchedulerConfig"][const] = getattr(SchedulerConfig, const)
    return out


def classes() -> dict[str, Any]:
    """Everything an in-process runner touches, by the name the snapshot keys it under."""
    from vllm import AsyncEngineArgs

    engine = {
        "AsyncEngineArgs": {
            "import": "vllm",
            "path": source_path(AsyncEngineArgs),
            "create_engine_config": params_of(AsyncEngineArgs.create_engine_config),
            "from_cli_args": params_of(AsyncEngineArgs.from_cli_args),
        }
    }
    return async_llm_classes() | engine | output_classes() | config_classes()


def top_level_exports() -> list[str]:
    """Names importable from `vllm` (its lazy __all__), checked by actually importing each."""
    import vllm

    return sorted(n for n in vllm.__all__ if _importable(vllm, n))


def _importable(module: Any, name: str) -> bool:
    """Whether getattr(module, name) works (vllm resolves most top-level names lazily)."""
    try:
        getattr(module, name)
        return True
    except Exception:  # noqa: BLE001
        return False


# ----------------------------------------------------------------------------- quantization


def quantization() -> tuple[list[str], dict[str, Any]]:
    """QUANTIZATION_METHODS and each config class's get_min_capability() (a classmethod: no GPU)."""
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS, get_quantization_config

    caps: dict[str, Any] = {}
    for method in QUANTIZATION_METHODS:
        try:
            caps[method] = get_quantization_config(method).get_min_capability()
        except Exception as exc:  # noqa: BLE001
            caps[method] = {"error": f"{type(exc).__name__}: {exc}"[:160]}
    return list(QUANTIZATION_METHODS), caps


def modelopt_algos() -> dict[str, Any]:
    """Which quant_algo values each ModelOpt config claims (override) and accepts (from_config)."""
    from vllm.model_executor.layers.quantization import get_quantization_config, modelopt

    candidates = [*modelopt.QUANT_ALGOS, "W4A16_AWQ", "W4A8_AWQ", "INT4_AWQ", "INT8_SQ", "NVFP4_AWQ"]
    methods = ("modelopt", "modelopt_fp4", "modelopt_mxfp8", "modelopt_mixed")
    out: dict[str, Any] = {
        "QUANT_ALGOS": list(modelopt.QUANT_ALGOS),
        "KV_CACHE_QUANT_ALGOS": list(modelopt.KV_CACHE_QUANT_ALGOS),
        "path": source_path(modelopt),
    }
    for method in methods:
        cls = get_quantization_config(method)
        claims = [
            a
            for a in candidates
            if cls.override_quantization_method({"quant_method": "modelopt", "quant_algo": a}, None)
        ]
        out[method] = {
            "class": cls.__name__,
            "claims_quant_algo": claims,
            "from_config": {a: _try_from_config(cls, a) for a in claims},
        }
    return out


def _try_from_config(cls: Any, algo: str) -> str:
    """'ok' or the error of cls.from_config on a minimal hf_quant_config.json of that algo."""
    config = {
        "quantization": {
            "quant_algo": algo,
            "kv_cache_quant_algo": None,
            "exclude_modules": [],
            "group_size": 16,
            "quantized_layers": {},
        }
    }
    try:
        cls.from_config(config)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:200]


def hopper_fp4_kernels() -> dict[str, Any]:
    """NVFP4 linear kernels' is_supported() on the current platform, and the CUTLASS FP4 op by SM."""
    import torch
    from vllm.model_executor.kernels.linear import _POSSIBLE_NVFP4_KERNELS
    from vllm.platforms import PlatformEnum

    kernels = {k.__name__: list(k.is_supported()) for k in _POSSIBLE_NVFP4_KERNELS[PlatformEnum.CUDA]}
    op = {str(sm): bool(torch.ops._C.cutlass_scaled_mm_supports_fp4(sm)) for sm in (89, 90, 100, 120)}
    return {
        "nvfp4_linear_kernels_in_order": kernels,
        "cutlass_scaled_mm_supports_fp4": op,
        "path": "vllm/model_executor/kernels/linear/__init__.py",
    }


def kv_cache_dtypes(engine_opts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """--kv-cache-dtype choices (parser) and the CacheDType Literal (vllm/config/cache.py)."""
    from vllm.config.cache import CacheDType

    return {
        "choices": engine_opts["--kv-cache-dtype"]["choices"],
        "literal": list(typing.get_args(CacheDType)),
    }


# ----------------------------------------------------------------------------- resolved config + metrics


def tiny_model_dir() -> str:
    """A local Llama config.json (no weights): enough for ModelConfig, and nothing downloads."""
    path = Path(tempfile.mkdtemp(prefix="vllm-tiny-llama-"))
    (path / "config.json").write_text(json.dumps(TINY_LLAMA))
    return str(path)


def resolve(model: str, context: str, **kwargs: Any) -> Any:
    """create_engine_config for the tiny model in one usage context (the real default resolution)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.usage.usage_lib import UsageContext

    args = AsyncEngineArgs(model=model, skip_tokenizer_init=True, load_format="dummy", **kwargs)
    return args.create_engine_config(UsageContext[context])


def summarize(vc: Any) -> dict[str, Any]:
    """The resolved knobs a runner cares about, read from a VllmConfig."""
    s, c, cc = vc.scheduler_config, vc.cache_config, vc.compilation_config
    return {
        "max_num_seqs": s.max_num_seqs,
        "max_num_batched_tokens": s.max_num_batched_tokens,
        "enable_chunked_prefill": s.enable_chunked_prefill,
        "async_scheduling": s.async_scheduling,
        "long_prefill_token_threshold": s.long_prefill_token_threshold,
        "block_size": c.block_size,
        "enable_prefix_caching": c.enable_prefix_caching,
        "cache_dtype": c.cache_dtype,
        "gpu_memory_utilization": c.gpu_memory_utilization,
        "num_gpu_blocks": c.num_gpu_blocks,
        "max_model_len": vc.model_config.max_model_len,
        "cudagraph_mode": to_json(cc.cudagraph_mode),
        "compilation_mode": to_json(cc.mode),
        "optimization_level": to_json(vc.optimization_level),
    }


def defaults_resolution(model: str) -> tuple[dict[str, Any], Any]:
    """Observed defaults by usage context on this platform, plus get_batch_defaults for world size 1."""
    from vllm.engine.arg_utils import EngineArgs

    batched, seqs = EngineArgs.get_batch_defaults(1)
    observed = {
        ctx: summarize(resolve(model, ctx)) for ctx in ("OPENAI_API_SERVER", "LLM_CLASS", "ENGINE_CONTEXT")
    }
    observed["OPENAI_API_SERVER+performance_mode=throughput"] = summarize(
        resolve(model, "OPENAI_API_SERVER", performance_mode="throughput")
    )
    observed["OPENAI_API_SERVER+enforce_eager"] = summarize(
        resolve(model, "OPENAI_API_SERVER", enforce_eager=True)
    )
    server = resolve(model, "OPENAI_API_SERVER")
    return {
        "get_batch_defaults(world_size=1)": {
            "max_num_batched_tokens": {k.name if k else None: v for k, v in batched.items()},
            "max_num_seqs": {k.name if k else None: v for k, v in seqs.items()},
        },
        "observed_tiny_llama_max_position_4096": observed,
    }, server


def metrics(vllm_config: Any) -> dict[str, Any]:
    """Series PrometheusStatLogger registers live for vllm_config, plus every vllm:* literal in source."""
    import prometheus_client
    from vllm.v1.metrics.loggers import PrometheusStatLogger

    logger = PrometheusStatLogger(vllm_config)
    logger.log_engine_initialized()  # registers vllm:cache_config_info
    out: dict[str, Any] = {}
    for collector in list(prometheus_client.REGISTRY._collector_to_names):
        name = getattr(collector, "_name", "")
        if name.startswith("vllm:"):
            out[name] = {
                "type": collector._type,
                "labels": list(collector._labelnames),
                "exposed_as": exposed_names(name, collector._type),
                "registered": "live",
            }
    for name, path in source_metric_names():
        out.setdefault(name, {"registered": "conditional (not in this config)", "path": path})
    return dict(sorted(out.items()))


def exposed_names(name: str, kind: str) -> list[str]:
    """Sample names on /metrics: prometheus_client appends _total to counters, _bucket... to histograms."""
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    return [name]


def source_metric_names() -> Iterator[tuple[str, str]]:
    """String literals starting with 'vllm:' (one colon) in the installed metrics modules."""
    import vllm

    root = Path(vllm.__file__).parent.parent
    for rel in METRIC_MODULES:
        path = root / rel
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and METRIC_NAME.match(node.value)
            ):
                yield node.value.removesuffix("_total") if rel.endswith("perf.py") else node.value, rel


# ----------------------------------------------------------------------------- source lookups


def find_literals() -> dict[str, Any]:
    """Where each log format string occurs in the installed vllm (path:line), or that it does not."""
    import vllm

    root = Path(vllm.__file__).parent.parent
    out: dict[str, Any] = {}
    for key, (literal, rel) in LOG_LINES.items():
        lines = (root / rel).read_text().splitlines() if (root / rel).exists() else []
        hits = [i + 1 for i, line in enumerate(lines) if literal.split("%")[0].strip() in line]
        out[key] = {"format": literal, "path": rel, "lines": hits, "found": bool(hits)}
    return out


def verify_facts() -> list[dict[str, Any]]:
    """Each FACTS entry with the line its anchor sits on in the installed vllm (found=false if moved)."""
    import vllm

    root = Path(vllm.__file__).parent.parent
    out = []
    for what, rel, anchor in FACTS:
        lines = (root / rel).read_text().splitlines() if (root / rel).exists() else []
        hits = [i + 1 for i, line in enumerate(lines) if anchor in line]
        out.append(
            {
                "what": what,
                "path": rel,
                "anchor": anchor,
                "lines": hits,
                "found": bool(hits),
                "version": vllm.__version__,
                "how": "read from source; anchor checked by this script",
            }
        )
    return out


def load_formats() -> list[str]:
    """--load-format values vLLM knows (the LoadFormats Literal; 'dummy' = random weights)."""
    from vllm.model_executor.model_loader import LoadFormats

    return list(typing.get_args(LoadFormats))


def wheel_sha256(wheel: str | None) -> str | None:
    """sha256 of the wheel the venv was installed from, when given."""
    if not wheel:
        return None
    return hashlib.sha256(Path(wheel).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- assembly


def record(args: argparse.Namespace) -> dict[str, Any]:
    """Build the whole snapshot, section by section."""
    import torch
    import vllm

    platform = install_platform(args.simulate)
    engine_opts = options_of(engine_parser())
    serve = serve_parser()
    methods, caps = quantization()
    model = tiny_model_dir()
    resolved, server_config = defaults_resolution(model)
    sha = wheel_sha256(args.wheel)
    return {
        "schema": SCHEMA,
        "vllm_version": vllm.__version__,
        "recorded": args.recorded,
        "method": (
            f"imported vllm {vllm.__version__}"
            + (f" from its wheel (sha256 {sha})" if sha else "")
            + f" with torch {torch.__version__}; platform: {platform}"
            + ("; stub libcuda.so.1 on LD_LIBRARY_PATH" if os.environ.get(STUB_ENV) else "")
            + "; introspected AsyncEngineArgs fields, AsyncEngineArgs.add_cli_args and the"
            " `vllm serve` parser (ServeSubcommand.subparser_init -> make_arg_parser), msgspec"
            " fields of SamplingParams, signatures, QUANTIZATION_METHODS, ModelOpt configs,"
            " create_engine_config on a tiny local Llama config.json, and a live"
            " PrometheusStatLogger registry"
        ),
        "facts": verify_facts(),
        "engine_args": engine_args(engine_opts),
        "engine_options": engine_opts,
        "serve_options": options_of(serve),
        "serve_parse_checks": parse_checks(serve),
        "sampling_params": sampling_params(),
        "enums": enums(),
        "classes": classes(),
        "top_level_exports": top_level_exports(),
        "quantization_methods": methods,
        "quantization_min_capability": caps,
        "modelopt_quant_algos": modelopt_algos(),
        "nvfp4_kernels_on_platform": hopper_fp4_kernels(),
        "kv_cache_dtypes": kv_cache_dtypes(engine_opts),
        "load_formats": load_formats(),
        "metrics": metrics(server_config),
        "defaults_resolution": {
            "what": DEFAULTS_WHAT,
            "path": "vllm/engine/arg_utils.py",
            "rule": DEFAULTS_RULE,
        }
        | resolved,
        "server_info": SERVER_INFO,
        "log_lines": find_literals(),
    }


def main() -> None:
    """Parse arguments, make vllm importable here, record and write the snapshot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to write the JSON snapshot")
    parser.add_argument("--wheel", help="the vllm wheel the environment was installed from (for sha256)")
    parser.add_argument("--recorded", default=datetime.date.today().isoformat())
    parser.add_argument(
        "--simulate",
        default="h200",
        choices=sorted(SIMULATED),
        help="GPU whose capability/memory/name to assume when torch sees no GPU",
    )
    args = parser.parse_args()
    ensure_cuda_driver_loadable()
    snapshot = record(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(snapshot, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
