"""`vllm-inprocess`: vLLM's own async engine in the trial's worker, with the knobs of the `vllm` server.

Same knob vocabulary, translation, feasibility and build step as `vllm` (server.py); only the way to
run differs: `AsyncLLM` in this process instead of `vllm serve` behind HTTP, so comparing the two on
one configuration measures what the HTTP path costs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from workbench.engines.base import Artifact, Engine
from workbench.engines.runner import Runner
from workbench.engines.vllm.args import engine_args
from workbench.engines.vllm.declarations import VllmDeclarations
from workbench.engines.vllm.knobs import VllmOptions
from workbench.engines.vllm.server import INSTALL_HINT

#: where each name the runner uses lives in vLLM 0.26.0 (recorded in api/vllm-0.26.0.json)
IMPORTS = {
    "AsyncLLM": "vllm.v1.engine.async_llm",
    "AsyncEngineArgs": "vllm",
    "SamplingParams": "vllm",
    "TokensPrompt": "vllm.inputs",
    "RequestOutputKind": "vllm.sampling_params",
    "UsageContext": "vllm.usage.usage_lib",
}


def load_api() -> SimpleNamespace:
    """vLLM's classes, imported only in the worker (the orchestrator never imports vllm)."""
    import importlib

    names = {n: getattr(importlib.import_module(m), n) for n, m in IMPORTS.items()}
    return SimpleNamespace(**names, version=importlib.import_module("vllm").__version__)


class VllmInProcessEngine(VllmDeclarations, Engine):
    """vLLM's AsyncLLM in the worker: token-id prompts, per-token streaming, resolved config read back."""

    name = "vllm-inprocess"
    version = "1"

    @classmethod
    def check_available(cls) -> str | None:
        return None if importlib.util.find_spec("vllm") is not None else INSTALL_HINT

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        """The same configuration as `vllm serve` flags and as `AsyncEngineArgs` keywords."""
        from workbench.engines.vllm.server import VllmServeEngine

        ctx = self.ctx
        files = VllmServeEngine(ctx).export(knobs, out)
        p = out / "engine_args.json"
        import json

        p.write_text(
            json.dumps(engine_args({**self.default_knobs(), **knobs}, ctx), indent=2, default=str) + "\n"
        )
        return [*files, p]

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        from workbench.engines.vllm.runner import VllmRunner

        ctx = self.serving_context(self.ctx, artifact)
        return VllmRunner(load_api(), ctx, {**ctx.knobs, **runtime_knobs})


__all__ = ["VllmInProcessEngine", "VllmOptions", "load_api"]
