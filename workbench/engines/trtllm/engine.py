"""The `trtllm` engine: TensorRT-LLM 1.2.x through its LLM API, PyTorch backend (default) or TensorRT.

backend: pytorch (`from tensorrt_llm import LLM`, what trtllm-serve and trtllm-bench run by default):
build = ModelOpt PTQ of the study's checkpoint into a quantized HF checkpoint (`hf_quant_config.json`),
cached under the build key, only for a quantized choice the study does not map to a pre-quantized
checkpoint; open = `LLM(model=<checkpoint>, <TorchLlmArgs>)`.
backend: tensorrt (legacy; removed in the 1.3 line): build = `_tensorrt_engine.LLM(...)` + `save()`;
open = `LLM(model=<saved engine>, <runtime knobs>)`.
Both builds run in a child process (build_process.py), so their memory peak and CUDA context are
not the trial's. Requests stream through `generate_async` (runner.py).

This package is the only place the workbench imports tensorrt_llm, and only inside `load_api()`;
every class is looked up by the import path the recorded API snapshot (api/) gives.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import workbench.engines.trtllm.args as T
import workbench.engines.trtllm.build as B
import workbench.engines.trtllm.feasibility as feasibility
import workbench.engines.trtllm.feasibility_torch as feasibility_torch
from workbench.engines.base import (
    Artifact,
    CrosscheckError,
    CrosscheckInput,
    DeviceInfo,
    Engine,
    EngineError,
    EngineNotInstalled,
    FeasibilityContext,
    OpenContext,
    Runner,
)
from workbench.engines.trtllm.knobs import TORCH_KNOBS, backend
from workbench.engines.trtllm.runner import TorchRunner, TrtllmRunner

INSTALL_HINT = (
    "the trtllm engine needs TensorRT-LLM 1.2.x (Python package tensorrt_llm), which is not installed in "
    "this environment. Install it on a Linux machine with an NVIDIA GPU with `pip install -e '.[trtllm]'` "
    "(tensorrt_llm==1.2.1; its wheel is served by NVIDIA's own Python package index, see NVIDIA's "
    "TensorRT-LLM installation guide), or run the workbench inside NVIDIA's TensorRT-LLM release container "
    "(NGC image tensorrt-llm/release, tag 1.2.1), or only the trial worker there (`runtime: {container: "
    "{image: nvcr.io/nvidia/tensorrt-llm/release:1.2.1}}`). Until then use `engine: hf` (docs/trtllm.md)."
)


class TrtllmNotInstalled(EngineNotInstalled):
    """tensorrt_llm is missing from the environment the worker runs in (kind "not_installed")."""


def available() -> bool:
    return importlib.util.find_spec("tensorrt_llm") is not None


def load_api(which: str = "tensorrt") -> SimpleNamespace:
    """TensorRT-LLM's classes of a backend, each from the import path its recorded snapshot gives."""
    if not available():
        raise TrtllmNotInstalled(INSTALL_HINT)
    from workbench.engines.trtllm.api import snapshot, torch_snapshot

    snap = torch_snapshot() if which == "pytorch" else snapshot()
    ns: dict[str, Any] = {}
    for name, module in snap["imports"].items():
        try:
            ns[name] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            import tensorrt_llm

            raise EngineError(
                f"TensorRT-LLM {getattr(tensorrt_llm, '__version__', '?')} has no {module}.{name}; the "
                f"workbench is written against {snap['tensorrt_llm_version']} ({e})"
            ) from e
    import tensorrt_llm

    ns["version"] = str(getattr(tensorrt_llm, "__version__", "unknown"))
    return SimpleNamespace(**ns)


def dir_size(path: Path) -> int:
    """Bytes of the files under `path` (the saved engine's or checkpoint's size)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class TrtllmEngine(Engine):
    name = "trtllm"
    version = "2"
    knobs = {k.name: k for k in [*T.KNOBS, *TORCH_KNOBS]}
    options_model = T.TrtllmOptions
    packages = ("tensorrt_llm", "tensorrt", "torch", "transformers", "nvidia-modelopt")
    crosscheck_tool = "trtllm-bench"

    @classmethod
    def check_available(cls) -> str | None:
        return None if available() else INSTALL_HINT

    @classmethod
    def doctor_notes(cls) -> list[str]:
        """Which set-up works here: (a) in this interpreter (the release container), (b) the worker in a
        container, and the ModelOpt build step, which needs no TensorRT-LLM (docs/trtllm.md)."""
        from workbench.engines.trtllm.checks import setups_here

        return setups_here(available())

    @classmethod
    def check_options(cls, options: dict[str, Any], study_dir: str | None) -> list[tuple[str, str]]:
        from workbench.engines.trtllm.checks import option_problems

        return option_problems(options, study_dir)

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        if backend(context.options) == "tensorrt":
            return feasibility.infeasible_reason(knobs, device, context, context.options)
        return feasibility_torch.infeasible_reason(knobs, device, context, context.options)

    @classmethod
    def export(cls, knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
        knobs = {**cls.default_knobs(), **knobs}
        if backend(ctx.options) == "tensorrt":
            from workbench.engines.trtllm.export import write_files

            return write_files(knobs, ctx, out)
        from workbench.engines.trtllm.export_torch import write_files as write_torch

        return write_torch(knobs, ctx, out)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        from workbench.engines.trtllm.export import README_LINES
        from workbench.engines.trtllm.export_torch import README_LINES as TORCH_LINES

        return list(TORCH_LINES if any(f.name == "config.yaml" for f in files) else README_LINES)

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> dict[str, Any]:
        from workbench.engines.trtllm.crosscheck import run

        exe = T.TrtllmOptions.model_validate(inp.spec.engine_options).trtllm_bench
        if shutil.which(exe) is None:
            raise CrosscheckError(f"{exe} is not on PATH: {INSTALL_HINT}")
        return run(inp)

    @classmethod
    def build_material(cls, ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """Equal artifacts share a key whatever the knob spelling (build.py says what is in it)."""
        return B.material(ctx, build_knobs)

    @classmethod
    def needs_build_for(cls, options: dict[str, Any], build_knobs: dict[str, Any]) -> bool:
        return B.needs_build(options, build_knobs)

    def build(self, ctx: OpenContext, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        return self.build_artifact(ctx, build_knobs, out_dir)

    @classmethod
    def build_artifact(cls, ctx: OpenContext, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """The build, callable without an engine instance: the PyTorch backend's ModelOpt build needs
        torch, transformers and nvidia-modelopt only, so it also runs where tensorrt_llm is absent."""
        from workbench.engines.trtllm.build_process import run_child

        knobs = {**ctx.knobs, **build_knobs}
        index = ctx.device.index or 0 if ctx.device.kind == "cuda" else None
        if backend(ctx.options) == "tensorrt":
            load_api("tensorrt")  # stop here, with the install route, when tensorrt_llm is missing
            res = run_child("tensorrt", B.trt_request(ctx, knobs), out_dir, index, out_dir / "build.log")
            res["engine_size_bytes"] = dir_size(out_dir / "engine")
            return res
        res = run_child("modelopt", B.modelopt_request(ctx, knobs), out_dir, index, out_dir / "build.log")
        res["checkpoint_size_bytes"] = dir_size(out_dir / "checkpoint")
        return res

    def open(self, ctx: OpenContext, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        knobs = {**ctx.knobs, **runtime_knobs}
        if backend(ctx.options) == "tensorrt":
            return TrtllmRunner(load_api("tensorrt"), ctx, artifact, knobs)
        return TorchRunner(load_api("pytorch"), ctx, artifact, knobs, model_path(ctx, artifact, knobs))


def model_path(ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]) -> str:
    """What the PyTorch backend loads: the ModelOpt checkpoint, a pre-quantized one, or the source."""
    if artifact.build_key:
        return str(artifact.path / "checkpoint")
    return B.prequantized(ctx, knobs["quantization"]) or ctx.model_source


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
