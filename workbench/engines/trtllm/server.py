"""`trtllm-serve`: TensorRT-LLM's server (PyTorch backend) with the `trtllm` engine's knobs and translation.

One vocabulary for both ways to run: the knobs are `trtllm`'s, the `--config` YAML the trial's server
reads is `args.serve_options` (the file `workbench export` writes), and the command line is the one the
export's `commands.sh` runs (`trtllm-serve MODEL --config config.yaml --backend pytorch
--tensor_parallel_size N`), so a study moves between in-process and server by changing `engine:` only.
A quantized choice is the same ModelOpt build step, with the same build key, served from its
checkpoint (or the study's pre-quantized one).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

import workbench.engines.trtllm.args as TT
import workbench.engines.trtllm.build as B
import workbench.engines.trtllm.feasibility as feasibility
from workbench.engines.base import Artifact, DeviceInfo, FeasibilityContext, OpenContext
from workbench.engines.runner import Runner
from workbench.engines.server.base import ServeOptions, ServerEngine, find_executable
from workbench.engines.trtllm.engine import TrtllmEngine, model_path
from workbench.engines.trtllm.knobs import TrtllmOptions

INSTALL_HINT = (
    "trtllm-serve is not in the worker's environment: run the trial worker in TensorRT-LLM's container "
    "(runtime: {container: {image: nvcr.io/nvidia/tensorrt-llm/release:1.2.1}}) or set "
    "engine_options.executable (docs/trtllm.md)"
)


class TrtllmServeOptions(ServeOptions, TrtllmOptions):
    """`engine_options:` of a trtllm-serve study: the server's (timeouts, scraping, executable) and trtllm's."""


class TrtllmServeEngine(ServerEngine):
    """trtllm-serve on 127.0.0.1 with the trial's TorchLlmArgs as its `--config` YAML."""

    name = "trtllm-serve"
    version = "2"
    program = "trtllm-serve"
    install_hint = INSTALL_HINT
    metrics_path = "/metrics"
    metrics_format = "trtllm-json"
    knobs = TrtllmEngine.knobs
    options_model = TrtllmServeOptions
    packages = TrtllmEngine.packages

    @classmethod
    def check_options(
        cls, options: TrtllmServeOptions, study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        return TrtllmEngine.check_options(options, study_dir)

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return feasibility.infeasible_reason(knobs, device, context, cls.options_of(context))

    @classmethod
    def needs_build_for(cls, options: TrtllmServeOptions, build_knobs: dict[str, Any]) -> bool:
        return B.needs_build(options, build_knobs)

    def build_material(self, build_knobs: dict[str, Any]) -> dict[str, Any]:
        return B.material(self.ctx, build_knobs)

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        return TrtllmEngine(self.ctx).build(build_knobs, out_dir)

    @classmethod
    def config_yaml(cls, ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
        """The `--config` YAML: exactly the LLM arguments the in-process trtllm engine would pass."""
        return TT.serve_options(knobs, cls.options(ctx), ctx.model_dtype, ctx.load_format)

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        work.mkdir(parents=True, exist_ok=True)
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(cls.config_yaml(ctx, knobs), sort_keys=False))
        cmd = [
            find_executable("trtllm-serve", cls.options(ctx).executable),
            ctx.model_source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(config),
            *TT.serve_flags(knobs, cls.options(ctx)),
        ]
        if ctx.tokenizer:
            cmd += ["--tokenizer", ctx.tokenizer]
        if ctx.trust_remote_code:
            cmd.append("--trust_remote_code")
        return cmd + list(cls.options(ctx).extra_args)

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        """Serve what the in-process engine would load: the ModelOpt checkpoint of a built choice (real
        quantized weights, so no `dummy` load), a pre-quantized one, or the source."""
        ctx = self.ctx
        knobs = {**ctx.knobs, **runtime_knobs}
        served = model_path(ctx, artifact, knobs)
        if served != ctx.model_source:
            ctx = replace(ctx, model_source=served, load_format="auto")
        return self.serve(ctx, runtime_knobs)

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        """trtllm's deployable files: the same `config.yaml` this engine's trials ran, and commands.sh."""
        return TrtllmEngine(self.ctx).export(knobs, out)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        return TrtllmEngine.export_readme(files)
