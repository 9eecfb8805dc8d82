"""Command lines of the vendor servers: trtllm-serve (PyTorch backend) and SGLang (vLLM: engines/vllm/).

Each maps the four core knobs (and a few engine-specific ones) to its documented flags; the flags are
checked against `recorded.py`. These servers do not run on this machine (see docs/serving.md); the
command lines are exported with every trial (`serve.sh`) and tested as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.engines.base import DeviceInfo, FeasibilityContext, OpenContext
from workbench.engines.serve.base import ServerEngine, find_executable
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef

_GPU_ONLY = "needs an NVIDIA GPU (CUDA)"


def core_knobs(
    batch: int, tokens: int, fraction: float, quants: tuple[str, ...], fraction_means: str
) -> list[KnobDef]:
    """The four core knobs of a vendor server; `fraction_means` says what kv_cache_fraction is there
    (a share of free memory after the weights, or of the whole GPU: the engines differ)."""
    return [
        KnobDef(MAX_BATCH_SIZE, "int", False, batch, "most requests scheduled at once", low=1),
        KnobDef(
            KV_CACHE_FRACTION,
            "float",
            False,
            fraction,
            fraction_means,
            low=0.0,
            high=1.0,
            low_exclusive=True,
        ),
        KnobDef(MAX_NUM_TOKENS, "int", False, tokens, "token budget per step (chunked-prefill size)", low=1),
        KnobDef(
            QUANTIZATION, "categorical", False, quants[0], "on-the-fly quantization at load", choices=quants
        ),
    ]


class _GpuServer(ServerEngine):
    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return None if device.kind == "cuda" else f"{cls.name} {_GPU_ONLY}"


class TrtllmServeEngine(_GpuServer):
    """trtllm-serve MODEL with the PyTorch backend; the knobs as flags, the rest as the LLM-API YAML."""

    name = "trtllm-serve"
    version = "1"
    program = "trtllm-serve"
    install_hint = "run it in TensorRT-LLM's container (runtime: {container: {image: nvcr.io/nvidia/tensorrt-llm/release:1.2.1}})"
    metrics_path = "/metrics"
    metrics_format = "trtllm-json"
    packages = ("tensorrt_llm", "torch", "transformers")
    knobs = {
        k.name: k
        for k in [
            *core_knobs(
                2048,
                8192,
                0.9,
                ("none",),
                "--kv_cache_free_gpu_memory_fraction: share of the memory "
                "free after the weights load, for the KV cache",
            ),
            KnobDef("enable_block_reuse", "bool", False, True, "KV-cache block reuse (prefix caching)"),
            KnobDef("cuda_graphs", "bool", False, True, "CUDA graphs for decode batches"),
            KnobDef("enable_chunked_prefill", "bool", False, False, "split long prompts over steps"),
            KnobDef(
                "capacity_scheduler_policy",
                "categorical",
                False,
                "GUARANTEED_NO_EVICT",
                "scheduler policy",
                choices=("GUARANTEED_NO_EVICT", "MAX_UTILIZATION"),
            ),
        ]
    }

    @classmethod
    def llm_api_yaml(cls, knobs: dict[str, Any]) -> dict[str, Any]:
        return {
            "kv_cache_config": {"enable_block_reuse": bool(knobs["enable_block_reuse"])},
            "cuda_graph_config": {"enable_padding": True, "max_batch_size": int(knobs[MAX_BATCH_SIZE])}
            if knobs["cuda_graphs"]
            else None,
            "enable_chunked_prefill": bool(knobs["enable_chunked_prefill"]),
            "scheduler_config": {"capacity_scheduler_policy": knobs["capacity_scheduler_policy"]},
            "enable_iter_perf_stats": True,
        }

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        work.mkdir(parents=True, exist_ok=True)
        extra = work / "extra_llm_api_options.yaml"
        extra.write_text(yaml.safe_dump(cls.llm_api_yaml(knobs), sort_keys=False))
        o = cls.options(ctx)
        cmd = [
            find_executable("trtllm-serve", o.executable),
            ctx.model_source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend",
            "pytorch",
            "--max_batch_size",
            str(knobs[MAX_BATCH_SIZE]),
            "--max_num_tokens",
            str(knobs[MAX_NUM_TOKENS]),
            "--kv_cache_free_gpu_memory_fraction",
            str(knobs[KV_CACHE_FRACTION]),
            "--extra_llm_api_options",
            str(extra),
        ]
        if ctx.tokenizer:
            cmd += ["--tokenizer", ctx.tokenizer]
        if ctx.trust_remote_code:
            cmd.append("--trust_remote_code")
        return cmd + list(o.extra_args)


class SglangEngine(_GpuServer):
    """`python -m sglang.launch_server` with its server arguments and metrics on."""

    name = "sglang"
    version = "1"
    program = None
    packages = ("sglang", "torch", "transformers")
    knobs = {
        k.name: k
        for k in [
            *core_knobs(
                256,
                8192,
                0.88,
                ("none", "fp8"),
                "--mem-fraction-static: share of the WHOLE GPU memory "
                "for weights and KV cache (the KV pool gets what the weights leave)",
            ),
            KnobDef("disable_radix_cache", "bool", False, False, "turn prefix (radix) caching off"),
            KnobDef("page_size", "int", False, 1, "tokens per KV page", low=1),
            KnobDef("cuda_graphs", "bool", False, True, "CUDA graphs for decode"),
            KnobDef(
                "schedule_conservativeness",
                "float",
                False,
                1.0,
                "how conservatively new requests are admitted",
                low=0.0,
                low_exclusive=True,
            ),
        ]
    }

    @classmethod
    def check_available(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("sglang") is None:
            return "sglang is not installed here: pip install 'sglang[all]' into its own environment (runtime.python)"
        return None

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        import sys

        o = cls.options(ctx)
        cmd = [
            o.executable or sys.executable,
            "-m",
            "sglang.launch_server",
            "--model-path",
            ctx.model_source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-running-requests",
            str(knobs[MAX_BATCH_SIZE]),
            "--chunked-prefill-size",
            str(knobs[MAX_NUM_TOKENS]),
            "--mem-fraction-static",
            str(knobs[KV_CACHE_FRACTION]),
            "--page-size",
            str(knobs["page_size"]),
            "--schedule-conservativeness",
            str(knobs["schedule_conservativeness"]),
            "--dtype",
            ctx.model_dtype,
            "--enable-metrics",
        ]
        if knobs[QUANTIZATION] != "none":
            cmd += ["--quantization", str(knobs[QUANTIZATION])]
        if knobs["disable_radix_cache"]:
            cmd.append("--disable-radix-cache")
        if not knobs["cuda_graphs"]:
            cmd.append("--disable-cuda-graph")
        if ctx.load_format == "dummy":
            cmd += ["--load-format", "dummy"]
        return cmd + list(o.extra_args)
