"""`vllm`: `vllm serve MODEL` with the trial's engine arguments, driven by the streaming client.

The command is `args.engine_args` rendered with the flags recorded from vLLM 0.26.0. After the server
is ready, what vLLM resolved is read back from structured sources: the `vllm:cache_config_info` series
of its Prometheus /metrics (block size, GPU blocks, memory utilization, cache dtype, prefix caching)
and /v1/models (max_model_len). The scheduler's resolved sequence cap and token budget have no
structured source in a running server; they are read from the startup log's own lines and marked so.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

import workbench.engines.vllm.api as api
from workbench.engines.base import Artifact, OpenContext
from workbench.engines.runner import Runner
from workbench.engines.server.base import ServerEngine, find_executable
from workbench.engines.server.process import http_get
from workbench.engines.vllm.args import auto_knobs, engine_args, serve_command
from workbench.engines.vllm.declarations import VllmDeclarations
from workbench.engines.vllm.knobs import MODELOPT, VllmOptions
from workbench.engines.vllm.resolved import (
    from_log,
    from_metrics,
    from_server_info,
    kv_bytes_per_token,
    model_dtype,
    weights_bytes,
)

INSTALL_HINT = (
    "vLLM is not installed in the worker's environment: pip install vllm==0.26.0 (torch 2.11.0, CUDA 13.0) into "
    "its own venv and point runtime.python at it, or set engine_options.executable to its `vllm` program "
    "(docs/vllm.md)"
)


class VllmServeEngine(VllmDeclarations, ServerEngine):
    """`vllm serve` on 127.0.0.1 with the knobs as vLLM 0.26.0 engine arguments."""

    name = "vllm"
    version = "2"
    program = "vllm"
    install_hint = INSTALL_HINT

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        opts: VllmOptions = ctx.options
        args = engine_args(knobs, ctx)
        cmd = serve_command(find_executable("vllm", opts.executable), args, port, api.snapshot())
        return cmd + list(opts.extra_args)

    @classmethod
    def server_env(cls, ctx: OpenContext) -> dict[str, str]:
        """vLLM's switches, unless the study sets them: no FlashInfer sampler (FlashInfer may be absent), no
        hub, and dev mode for the resolved config on /server_info (the server listens on 127.0.0.1 only)."""
        defaults = {"VLLM_USE_FLASHINFER_SAMPLER": "0", "HF_HUB_OFFLINE": "1", "VLLM_SERVER_DEV_MODE": "1"}
        return {**defaults, **ctx.options.env}

    @classmethod
    def server_info(cls, runner: Any) -> dict[str, Any]:
        """What the running server resolved: Prometheus info series and /v1/models, then the log."""
        status, body = http_get(runner.base_url + "/metrics", timeout=5)
        info = from_metrics(body.decode(errors="replace")) if status == 200 else {}
        status, body = http_get(runner.base_url + "/v1/models", timeout=5)
        if status == 200:
            models = json.loads(body or b"{}").get("data") or [{}]
            if models[0].get("max_model_len"):
                info["max_model_len"] = int(models[0]["max_model_len"])
        status, body = http_get(runner.base_url + "/server_info?config_format=json", timeout=5)
        if status == 200:
            with contextlib.suppress(ValueError):
                info.update({k: v for k, v in from_server_info(json.loads(body)).items() if k not in info})
        if runner.proc is not None:
            logged = from_log(runner.proc.log_path)
            info.update({k: v for k, v in logged.items() if k.removesuffix("_source") not in info})
        info["kv_bytes_per_token"] = kv_bytes_per_token(
            runner.ctx.model_source, runner.knobs.get("kv_cache_dtype")
        )
        info["dtype"] = (
            runner.ctx.model_dtype
            if runner.ctx.model_dtype != "auto"
            else model_dtype(runner.ctx.model_source)
        )
        info["weights_bytes"] = weights_bytes(runner.ctx.model_source, runner.knobs.get("quantization"))
        info["weights_bytes_source"] = "estimate from config.json"
        info["auto_knobs"] = ",".join(auto_knobs(runner.knobs)) or "none"
        return info

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        return self.serve(self.serving_context(self.ctx, artifact), runtime_knobs)

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        """`serve.sh`; a built (modelopt_*) choice serves its checkpoint, which lives in the trial's cache:
        the script takes it from $CHECKPOINT rather than naming the source model it was built from."""
        ctx = self.ctx
        files = super().export(knobs, out)
        if {**self.default_knobs(), **knobs}.get("quantization") in MODELOPT:
            script = out / "serve.sh"
            text = script.read_text().replace(f" {shlex.quote(ctx.model_source)} ", ' "$CHECKPOINT" ', 1)
            need = (
                'CHECKPOINT="${CHECKPOINT:?set CHECKPOINT to the ModelOpt checkpoint this trial built: '
                '<build.artifact_path of its result.json>/checkpoint}"\n'
            )
            script.write_text(text.replace("exec ", need + "exec ", 1))
        return files

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        return [
            "`serve.sh` is the `vllm serve` command the trial ran (port 8000); knobs left to vLLM's defaults "
            "are not in it. Run it where vLLM 0.26.0 is installed.",
        ]
