"""The `trtllm-tensorrt` engine: TensorRT-LLM 1.2.x's legacy TensorRT-engine backend (gone in 1.3).

build = `_tensorrt_engine.LLM(...)` + `save()` in a child process (trtllm/build_process.py), cached
under the build key (the translated build arguments, the GPU model, the calibration data); open =
`LLM(model=<saved engine>, <runtime knobs>)`. Requests stream through trtllm's `LlmApiRunner`.
tensorrt_llm is imported only through `trtllm.engine.load_api("tensorrt")`, by the recorded import
paths of the TensorRT-backend snapshot (trtllm/api/tensorrt_llm-1.2.1.json).
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path
from typing import Any

import workbench.engines.trtllm_tensorrt.args as T
import workbench.engines.trtllm_tensorrt.build as B
import workbench.engines.trtllm_tensorrt.feasibility as feasibility
from workbench.engines.base import (
    Artifact,
    CrosscheckError,
    CrosscheckInput,
    DeviceInfo,
    Engine,
    FeasibilityContext,
)
from workbench.engines.comparison import Crosscheck
from workbench.engines.runner import Runner
from workbench.engines.trtllm.engine import INSTALL_HINT, available, dir_size, load_api
from workbench.engines.trtllm_tensorrt.knobs import KNOBS, TensorrtOptions
from workbench.engines.trtllm_tensorrt.runner import TensorrtRunner


class TrtllmTensorrtEngine(Engine):
    name = "trtllm-tensorrt"
    version = "1"
    knobs = {k.name: k for k in KNOBS}
    options_model = TensorrtOptions
    #: nvidia-modelopt too: TensorRT-LLM's own quantize step calibrates with it, so it shapes the engine
    packages = ("tensorrt_llm", "tensorrt", "torch", "transformers", "nvidia-modelopt")
    crosscheck_tool = "trtllm-bench"

    @classmethod
    def check_available(cls) -> str | None:
        return (
            None if available() else INSTALL_HINT.replace("the trtllm engine", "the trtllm-tensorrt engine")
        )

    @classmethod
    def check_options(
        cls, options: TensorrtOptions, study_dir: str | None
    ) -> list[tuple[tuple[str, ...], str]]:
        from workbench.engines.trtllm_tensorrt.checks import option_problems

        return option_problems(options, study_dir)

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        return feasibility.infeasible_reason(knobs, device, context, cls.options_of(context))

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        from workbench.engines.trtllm_tensorrt.export import write_files

        return write_files({**self.default_knobs(), **knobs}, self.ctx, out)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        from workbench.engines.trtllm_tensorrt.export import README_LINES

        return list(README_LINES)

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> Crosscheck:
        from workbench.engines.trtllm_tensorrt.crosscheck import run

        exe = inp.options.trtllm_bench
        if shutil.which(exe) is None:
            raise CrosscheckError(f"{exe} is not on PATH: {INSTALL_HINT}")
        return run(inp)

    def build_material(self, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """Equal engines share a key whatever the knob spelling (build.py says what is in it)."""
        return B.material(self.ctx, build_knobs)

    @classmethod
    def needs_build_for(cls, options: TensorrtOptions, build_knobs: dict[str, Any]) -> bool:
        return True  # every trial runs a saved engine

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        from workbench.engines.trtllm.build_process import run_child

        ctx = self.ctx
        load_api("tensorrt")  # stop here, with the install route, when tensorrt_llm is missing
        index = ctx.device.index or 0 if ctx.device.kind == "cuda" else None
        req = {
            **B.trt_request(ctx, {**ctx.knobs, **build_knobs}),
            "builder": f"{__name__}:build_tensorrt_engine",
        }
        res = run_child("builder", req, out_dir, index, out_dir / "build.log")
        res["engine_size_bytes"] = dir_size(out_dir / "engine")
        return res

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        ctx = self.ctx
        return TensorrtRunner(load_api("tensorrt"), ctx, artifact, {**ctx.knobs, **runtime_knobs})


#: the KV pool a TensorRT build's throw-away executor gets (1.2.x starts one before save(); its
#: default 0.9 of free memory would be the build's peak for nothing)
BUILD_KV_FRACTION = 0.05


def build_tensorrt_engine(req: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """In the build process: build with the TensorRT-engine LLM and save it; the build steps' times."""
    api = load_api("tensorrt")
    args = req["args"]
    workspace = out_dir / "workspace"
    workspace.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    llm = api.LLM(
        model=req["model"],
        tokenizer=req["tokenizer"],
        revision=req["revision"],
        trust_remote_code=req["trust_remote_code"],
        workspace=str(workspace),
        **T.llm_kwargs({**args, "kv_cache_config": {"free_gpu_memory_fraction": BUILD_KV_FRACTION}}, api),
    )
    try:
        construct_s = time.perf_counter() - t0
        stats = getattr(llm, "llm_build_stats", None)
        steps = {str(n): float(s) for n, s in (getattr(stats, "build_steps_info", None) or [])}
        t1 = time.perf_counter()
        llm.save(str(out_dir / "engine"))
        save_s = time.perf_counter() - t1
    finally:
        llm.shutdown()
        del llm
        gc.collect()
    shutil.rmtree(workspace, ignore_errors=True)
    return {
        "steps_s": {**steps, "llm_total": construct_s, "save": save_s},
        "llm_args": args,
        "tensorrt_llm_version": api.version,
    }
