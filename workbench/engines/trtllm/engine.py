"""The `trtllm` engine: TensorRT-LLM 1.2.x through its LLM API, PyTorch backend (its 1.2.x default).

`from tensorrt_llm import LLM`, what trtllm-serve and trtllm-bench run by default: build = ModelOpt PTQ
of the study's checkpoint into a quantized HF checkpoint (`hf_quant_config.json`), cached under the
build key, only for a quantized choice the study does not map to a pre-quantized checkpoint; open =
`LLM(model=<checkpoint>, <TorchLlmArgs>)`. The build runs in a child process (build_process.py), so
its memory peak and CUDA context are not the trial's. Requests stream through `generate_async`
(runner.py). The legacy TensorRT-engine backend is its own engine, `trtllm-tensorrt`.

This package (with trtllm_tensorrt, through `load_api`) is the only place the workbench imports
tensorrt_llm, and only inside `load_api()`; every class is looked up by the import path the recorded
API snapshot (api/) gives.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import workbench.engines.trtllm.build as B
import workbench.engines.trtllm.feasibility as feasibility
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
)
from workbench.engines.comparison import Crosscheck
from workbench.engines.runner import Runner
from workbench.engines.trtllm.knobs import KNOBS, TrtllmOptions
from workbench.engines.trtllm.runner import TorchRunner

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


def load_api(which: str = "pytorch") -> SimpleNamespace:
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
    knobs = {k.name: k for k in KNOBS}
    options_model = TrtllmOptions
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
    def check_options(cls, options: TrtllmOptions, study_dir: str | None) -> list[tuple[str, str]]:
        from workbench.engines.trtllm.checks import option_problems

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
        from workbench.engines.trtllm.export import write_files

        return write_files({**self.default_knobs(), **knobs}, self.ctx, out)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        from workbench.engines.trtllm.export import README_LINES

        return list(README_LINES)

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> Crosscheck:
        from workbench.engines.trtllm.crosscheck import run

        exe = inp.options.trtllm_bench
        if shutil.which(exe) is None:
            raise CrosscheckError(f"{exe} is not on PATH: {INSTALL_HINT}")
        return run(inp)

    def build_material(self, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """Equal artifacts share a key whatever the knob spelling (build.py says what is in it)."""
        return B.material(self.ctx, build_knobs)

    @classmethod
    def needs_build_for(cls, options: TrtllmOptions, build_knobs: dict[str, Any]) -> bool:
        return B.needs_build(options, build_knobs)

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """The ModelOpt build (torch, transformers and nvidia-modelopt only: it also runs where
        tensorrt_llm is absent, for trtllm-serve's worker), in a child process."""
        from workbench.engines.trtllm.build_process import run_child

        ctx = self.ctx
        knobs = {**ctx.knobs, **build_knobs}
        index = ctx.device.index or 0 if ctx.device.kind == "cuda" else None
        res = run_child("modelopt", B.modelopt_request(ctx, knobs), out_dir, index, out_dir / "build.log")
        res["checkpoint_size_bytes"] = dir_size(out_dir / "checkpoint")
        return res

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        ctx = self.ctx
        knobs = {**ctx.knobs, **runtime_knobs}
        return TorchRunner(load_api("pytorch"), ctx, artifact, knobs, model_path(ctx, artifact, knobs))


def model_path(ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]) -> str:
    """What the PyTorch backend loads: the ModelOpt checkpoint, a pre-quantized one, or the source."""
    if artifact.build_key:
        return str(artifact.path / "checkpoint")
    return B.prequantized(ctx, knobs["quantization"]) or ctx.model_source
