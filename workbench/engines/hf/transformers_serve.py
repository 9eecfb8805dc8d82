"""`transformers-serve`: transformers' OpenAI-compatible server with continuous batching, through our
launcher (`launcher.py`), so every knob of the in-process `hf` engine is reachable: the four core
knobs, CUDA graphs, async batching, the scheduler, block sharing, and an attention implementation
that is not silently switched (`auto_switch_to_flash` off).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field

from workbench.engines.base import DeviceInfo, FeasibilityContext, OpenContext, Request
from workbench.engines.hf.config import cb_config_args, kv_bytes_per_token_of
from workbench.engines.hf.engine import _KNOBS as HF_KNOBS
from workbench.engines.hf.engine import HFEngine
from workbench.engines.server.base import ServeOptions, ServerEngine


class TransformersServeOptions(ServeOptions):
    threads: int | None = None
    #: Python's GIL switch interval in the server (default Python's 5 ms): its event loop, which
    #: streams every token, waits up to this long for the GIL held by the generation thread
    switch_interval_ms: float | None = Field(default=None, gt=0, le=100)


def cb_args(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    """The full ContinuousBatchingConfig of the trial (the in-process engine's translation, plus async)."""
    from workbench.engines.hf.export import model_config

    per_token = (
        kv_bytes_per_token_of(model_config(ctx), ctx.model_dtype) if ctx.device.kind == "cpu" else None
    )
    args = cb_config_args(knobs, ctx.device.kind, ctx.cpu_kv_budget_gb, per_token)
    args["auto_switch_to_flash"] = False
    return args


class TransformersServeEngine(ServerEngine):
    name = "transformers-serve"
    version = "1"
    knobs = {k.name: replace(k, build_time=False) for k in HF_KNOBS}
    options_model = TransformersServeOptions
    packages = ("torch", "transformers", "torchao", "fastapi", "uvicorn", "openai", "aiohttp")
    token_prompts = False

    @classmethod
    def check_available(cls) -> str | None:
        import importlib.util

        missing = [
            m
            for m in ("torch", "transformers", "fastapi", "uvicorn", "openai", "aiohttp")
            if importlib.util.find_spec(m) is None
        ]
        if missing:
            return (
                "transformers-serve needs torch, transformers and the serving extra: "
                f"pip install -e '.[hf,serve]' (missing: {', '.join(missing)})"
            )
        return None

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return HFEngine.infeasible_reason(knobs, device, context)

    @classmethod
    def launcher_config(cls, ctx: OpenContext, knobs: dict[str, Any], port: int) -> dict[str, Any]:
        return {
            "model": ctx.model_source,
            "revision": ctx.model_revision,
            "tokenizer": ctx.tokenizer,
            "dtype": ctx.model_dtype,
            "load_format": ctx.load_format,
            "trust_remote_code": ctx.trust_remote_code,
            "device": ctx.device.kind,
            "attn_implementation": knobs["attn_implementation"],
            "quantization": knobs.get("quantization", "none"),
            "cb": cb_args(ctx, knobs),
            "port": port,
            "served_model_name": cls.options(ctx).served_model_name or ctx.model_source,
            "threads": cls.options(ctx).threads,
            "switch_interval_ms": cls.options(ctx).switch_interval_ms,
        }

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        work.mkdir(parents=True, exist_ok=True)
        cfg = work / "transformers_serve.json"
        cfg.write_text(json.dumps(cls.launcher_config(ctx, knobs, port), indent=2))
        python = cls.options(ctx).executable or sys.executable
        return [python, "-m", "workbench.engines.hf.launcher", str(cfg), *cls.options(ctx).extra_args]

    @classmethod
    def server_env(cls, ctx: OpenContext) -> dict[str, str]:
        return {
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            **super().server_env(ctx),
        }

    @classmethod
    def ignore_eos_payload(cls, request: Request) -> dict[str, Any]:
        """transformers serve rejects `ignore_eos` (422); its own `generation_config` sets EOS per request."""
        gen = {"do_sample": False, "max_new_tokens": request.max_new_tokens, "eos_token_id": -1}
        return {"generation_config": json.dumps(gen)}
