"""The `vllm` build step: a ModelOpt checkpoint (FP8, NVFP4, W4A16 AWQ) that vLLM then loads.

`none` and the on-the-fly `fp8` need no build (vLLM quantizes while loading). A `modelopt_*` choice
runs NVIDIA ModelOpt's post-training quantization in a child process, as the trtllm engine's build
does (`engines/trtllm/modelopt_build.py`, `build_process.py`), into a Hugging Face checkpoint with
its quantization config, cached under the build key: the algorithm, the KV-cache dtype (fp8 adds
calibrated KV scales) and the calibration data's content and size. With `load_format: dummy` the
weights are random in the model's shape (made from its config.json), which is what a speed study on
a machine without the weights measures; the build then keys on that too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from workbench.engines.base import Artifact, OpenContext
from workbench.engines.trtllm.build import calib_key, child_request
from workbench.engines.vllm.knobs import MODELOPT, VllmOptions
from workbench.knobs import QUANTIZATION


def material(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    """What the build key hashes: equal checkpoints share a key whatever else the trial sets."""
    q = knobs.get(QUANTIZATION, "none")
    out: dict[str, Any] = {"quantization": q, "kv_cache_dtype": knobs.get("kv_cache_dtype", "auto")}
    if q not in MODELOPT:
        return out
    o: VllmOptions = ctx.options
    return {
        **out,
        "modelopt_algorithm": MODELOPT[q],
        "calib": calib_key(ctx),
        "calib_samples": o.calib_samples,
        "calib_max_seq_length": o.calib_max_seq_length,
        "calib_batch_size": o.calib_batch_size,
        "random_weights": ctx.load_format == "dummy",
        "calib_device": ctx.device.kind,
    }


def modelopt_request(ctx: OpenContext, knobs: dict[str, Any]) -> dict[str, Any]:
    """The build child's request (the trtllm build's, with vLLM's options and algorithm names)."""
    kv = "fp8" if str(knobs.get("kv_cache_dtype", "auto")).startswith("fp8") else "auto"
    return child_request(ctx, MODELOPT[knobs[QUANTIZATION]], kv, ctx.options)


class VllmBuild:
    """The build hooks both vLLM engines share (a mixin placed before their base class)."""

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        return build_knobs.get(QUANTIZATION, "none") in MODELOPT

    @classmethod
    def needs_build_for(cls, options: VllmOptions, build_knobs: dict[str, Any]) -> bool:
        return cls.needs_build(build_knobs)

    ctx: OpenContext

    def build_material(self, build_knobs: dict[str, Any]) -> dict[str, Any]:
        return material(self.ctx, {**self.ctx.knobs, **build_knobs})

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        """The ModelOpt build: torch, transformers and nvidia-modelopt, not vLLM, so a checkpoint can be
        made where vLLM is absent."""
        from workbench.engines.trtllm.build_process import run_child

        ctx = self.ctx
        knobs = {**ctx.knobs, **build_knobs}
        index = (ctx.device.index or 0) if ctx.device.kind == "cuda" else None
        res = run_child("modelopt", modelopt_request(ctx, knobs), out_dir, index, out_dir / "build.log")
        res["checkpoint_size_bytes"] = sum(
            f.stat().st_size for f in (out_dir / "checkpoint").rglob("*") if f.is_file()
        )
        return res

    @classmethod
    def serving_context(cls, ctx: OpenContext, artifact: Artifact) -> OpenContext:
        """The context vLLM opens: a built choice serves its ModelOpt checkpoint (real, quantized weights,
        so no `dummy` load), with the study's tokenizer or the one saved beside the checkpoint."""
        if not artifact.build_key or ctx.knobs.get(QUANTIZATION) not in MODELOPT:
            return ctx
        return replace(ctx, model_source=str(artifact.path / "checkpoint"), load_format="auto")
