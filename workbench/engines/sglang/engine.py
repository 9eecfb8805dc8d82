"""`sglang`: SGLang's server (`python -m sglang.launch_server`), declared, not run here.

The four core knobs (and a few of SGLang's own) map to its documented flags, checked against
`recorded.py`. SGLang does not run on this machine (see docs/serving.md); the command line is exported
with every trial (`serve.sh`) and tested as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.engines.base import DeviceInfo, FeasibilityContext, OpenContext
from workbench.engines.server.base import ServerEngine, core_knobs
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef

_GPU_ONLY = "needs an NVIDIA GPU (CUDA)"


class _GpuServer(ServerEngine):
    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return None if device.kind == "cuda" else f"{cls.name} {_GPU_ONLY}"


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
