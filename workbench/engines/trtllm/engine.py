"""The `trtllm` engine: TensorRT-LLM 1.2.x, TensorRT backend, through the LLM API.

build: `tensorrt_llm._tensorrt_engine.LLM(model, build_config=, quant_config=, calib_config=, ...)`
converts, quantizes (ModelOpt, calibrating where the algorithm needs it) and builds; `llm.save()`
writes the engine into the workbench's engine cache under the build key, with the time of each
build step (`llm_build_stats.build_steps_info`) and the engine's size.
open: `LLM(model=<saved engine>, tokenizer=<HF dir>, <runtime knobs>)`: no rebuild.
generate: `generate_async(token_ids, SamplingParams, streaming=True)` on an asyncio loop of our
own, so every token's arrival is timed (TTFT, TPOT, ITL come from real token times).
close: `shutdown()`, then NVML is polled until device memory is back at the baseline.

This module is the only place the workbench imports tensorrt_llm, and only inside `load_api()`;
every class is looked up by the import path recorded in the API snapshot (trtllm_api/).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import json
import queue
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from workbench.devicemem import nvml_used, wait_for_release
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
    Request,
    RequestRecord,
    Runner,
    RunnerStats,
)
from workbench.engines.trtllm import args as T
from workbench.engines.trtllm import feasibility

INSTALL_HINT = (
    "the trtllm engine needs TensorRT-LLM 1.2.x (Python package tensorrt_llm), which is not installed in "
    "this environment. Install it on a Linux machine with an NVIDIA GPU with `pip install -e '.[trtllm]'` "
    "(tensorrt_llm==1.2.1; its wheel is served by NVIDIA's own Python package index, see NVIDIA's "
    "TensorRT-LLM installation guide), or run the workbench inside NVIDIA's TensorRT-LLM release container "
    "(NGC image tensorrt-llm/release, tag 1.2.1). Until then use `engine: hf` (docs/trtllm.md)."
)


class TrtllmNotInstalled(EngineNotInstalled):
    """tensorrt_llm is missing from the environment the worker runs in (kind "not_installed")."""


def dir_size(path: Path) -> int:
    """Bytes of the files under `path` (the saved engine's size)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def available() -> bool:
    return importlib.util.find_spec("tensorrt_llm") is not None


def load_api() -> SimpleNamespace:
    """TensorRT-LLM's classes, each from the import path the snapshot records for 1.2.x."""
    if not available():
        raise TrtllmNotInstalled(INSTALL_HINT)
    from workbench.engines.trtllm.api import snapshot

    snap = snapshot()
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


class TrtllmEngine(Engine):
    name = "trtllm"
    version = "1"
    knobs = {k.name: k for k in T.KNOBS}
    options_model = T.TrtllmOptions
    packages = ("tensorrt_llm", "tensorrt", "torch", "transformers", "modelopt")
    crosscheck_tool = "trtllm-bench"

    @classmethod
    def check_available(cls) -> str | None:
        return None if available() else INSTALL_HINT

    @classmethod
    def infeasible_reason(
        cls,
        knobs: dict[str, Any],
        device: DeviceInfo,
        context: FeasibilityContext,
    ) -> str | None:
        return feasibility.infeasible_reason(knobs, device, context, context.options)

    @classmethod
    def export(cls, knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
        from workbench.engines.trtllm.export import write_files

        return write_files({**cls.default_knobs(), **knobs}, ctx, out)

    @classmethod
    def export_readme(cls, files: list[Path]) -> list[str]:
        from workbench.engines.trtllm.export import README_LINES

        return list(README_LINES)

    @classmethod
    def report_fields(cls, knobs: dict[str, Any]) -> dict[str, Any]:
        return {
            "scheduling_policy": knobs.get("scheduler_policy"),
            "tokens_per_block": knobs.get("tokens_per_block"),
        }

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> dict[str, Any]:
        from workbench.engines.trtllm.crosscheck import run

        exe = T.TrtllmOptions.model_validate(inp.spec.engine_options).trtllm_bench
        if shutil.which(exe) is None:
            raise CrosscheckError(f"{exe} is not on PATH: {INSTALL_HINT}")
        return run(inp)

    @classmethod
    def build_material(cls, ctx: OpenContext, build_knobs: dict[str, Any]) -> dict[str, Any]:
        """The translated build arguments: equal engines share a key whatever the knob spelling."""
        return T.build_args(build_knobs, ctx.options, ctx.model_dtype, ctx.load_format)

    def build(self, ctx: OpenContext, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        api = load_api()
        args = T.build_args(build_knobs, ctx.options, ctx.model_dtype, ctx.load_format)
        workspace = out_dir / "workspace"
        workspace.mkdir()
        baseline = nvml_used(ctx.device.index or 0)
        t0 = time.perf_counter()
        llm = api.LLM(
            model=ctx.model_source,
            tokenizer=ctx.tokenizer or ctx.model_source,
            revision=ctx.model_revision,
            trust_remote_code=ctx.trust_remote_code,
            workspace=str(workspace),
            **T.llm_kwargs(args, api),
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
        released = wait_for_release(
            (ctx.device.index or 0), baseline, timeout_s=_opts(ctx).memory_settle_timeout_s
        )
        return {
            "steps_s": {**steps, "llm_total": construct_s, "save": save_s},
            "engine_size_bytes": dir_size(out_dir / "engine"),
            "llm_args": args,
            "tensorrt_llm_version": api.version,
            "memory_released_after_build": released,
        }

    def open(self, ctx: OpenContext, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        return TrtllmRunner(ctx, artifact, runtime_knobs)


def _opts(ctx: OpenContext) -> T.TrtllmOptions:
    return T.TrtllmOptions.model_validate(ctx.options)


class TrtllmRunner(Runner):
    def __init__(self, ctx: OpenContext, artifact: Artifact, knobs: dict[str, Any]):
        from transformers import AutoTokenizer

        self._api = api = load_api()
        self._ctx = ctx
        self._device_index = ctx.device.index or 0
        self._baseline = nvml_used(self._device_index)
        tok_src = ctx.tokenizer or ctx.model_source
        self.tokenizer = AutoTokenizer.from_pretrained(
            tok_src, revision=ctx.model_revision, trust_remote_code=ctx.trust_remote_code
        )
        engine_dir = artifact.path / "engine"
        rargs = T.runtime_args(knobs)
        t0 = time.perf_counter()
        self.llm = api.LLM(
            model=str(engine_dir),
            tokenizer=tok_src,
            trust_remote_code=ctx.trust_remote_code,
            **T.llm_kwargs(rargs, api),
        )
        self.load_s = time.perf_counter() - t0
        cfg = json.loads((engine_dir / "config.json").read_text())
        self.resolved_config = resolved_config(cfg, rargs, artifact.manifest)
        self.resolved_config["tensorrt_llm_version"] = api.version
        self.vocab_size = int(self.resolved_config.get("vocab_size") or len(self.tokenizer))
        self.kv_cache_tokens = None
        self._done: queue.Queue[RequestRecord] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="trtllm-requests")
        self._thread.start()

    # generate_async must be called with an event loop running (its async queue binds to it)
    def submit(self, request: Request) -> None:
        arrival = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._one(request, arrival), self._loop)

    async def _one(self, req: Request, arrival: float) -> None:
        rec = RequestRecord(
            id=req.id, input_len=len(req.input_ids), arrival=arrival, token_times=[], finish=0.0
        )
        try:
            sp = self._api.SamplingParams(
                **T.sampling_args(req.max_new_tokens, req.ignore_eos, req.stop, detokenize=bool(req.stop))
            )
            out = None
            async for out in self.llm.generate_async(list(req.input_ids), sampling_params=sp, streaming=True):
                now = time.perf_counter()
                new = len(out.outputs[0].token_ids) - len(rec.token_times)
                if new > 0:  # a step may deliver several tokens: they arrived together
                    rec.token_times.extend([now] * new)
            if out is not None:
                rec.output_ids = list(out.outputs[0].token_ids)
                rec.text = out.outputs[0].text if req.stop else None
        except Exception as e:  # noqa: BLE001 - a failed request is recorded, the check fails the trial
            rec.error = f"{type(e).__name__}: {e}"
        rec.finish = time.perf_counter()
        self._done.put(rec)

    def collect(self, timeout: float) -> list[RequestRecord]:
        out = []
        try:
            out.append(self._done.get(timeout=timeout))
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def stats(self) -> RunnerStats:
        cfg = self.resolved_config
        return RunnerStats(
            weights_bytes=cfg.get("weights_bytes"),
            kv_cache_tokens=self.kv_cache_tokens,
            kv_bytes_per_token=cfg.get("kv_bytes_per_token"),
            dtype=cfg.get("torch_dtype"),
            scheduling_policy=self._ctx.knobs.get("scheduler_policy"),
        )

    def refresh_stats(self) -> None:
        """KV pool size and the executor's own memory accounting from the iteration stats."""
        try:
            stats = self.llm.get_stats(timeout=2)
        except Exception:  # noqa: BLE001 - stats are beta in 1.2.x; their absence is not a failure
            return
        info = kv_stats(stats)
        if info.get("kv_cache_tokens"):
            self.kv_cache_tokens = int(info["kv_cache_tokens"])
        self.resolved_config.update(info)

    def close(self) -> None:
        t0 = time.perf_counter()
        try:
            self.llm.shutdown()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            with contextlib.suppress(Exception):
                del self.llm
            gc.collect()
            released = wait_for_release(
                self._device_index, self._baseline, timeout_s=_opts(self._ctx).memory_settle_timeout_s
            )
            self.resolved_config["memory_released"] = released
            self.resolved_config["shutdown_s"] = time.perf_counter() - t0


def resolved_config(
    engine_config: dict[str, Any], runtime: dict[str, Any], manifest: dict[str, Any]
) -> dict[str, Any]:
    """What the engine really is (its config.json) and runs with: flat, for MLflow params."""
    pc = engine_config.get("pretrained_config", {}) or {}
    bc = engine_config.get("build_config", {}) or {}
    quant = pc.get("quantization", {}) or {}
    kv_algo = quant.get("kv_cache_quant_algo")
    dtype = pc.get("dtype")
    kv_bytes = 1 if kv_algo in ("FP8", "INT8") else (4 if dtype == "float32" else 2)
    heads = pc.get("num_attention_heads") or 0
    kv_heads = pc.get("num_key_value_heads") or heads
    head = pc.get("head_size") or (pc.get("hidden_size", 0) // heads if heads else 0)
    out: dict[str, Any] = {
        "architecture": pc.get("architecture"),
        "torch_dtype": dtype,
        "vocab_size": pc.get("vocab_size"),
        "quant_algo": quant.get("quant_algo"),
        "kv_cache_quant_algo": kv_algo,
        "engine_version": engine_config.get("version"),
        "kv_bytes_per_token": 2 * (pc.get("num_hidden_layers") or 0) * kv_heads * head * kv_bytes,
        "weights_bytes": manifest.get("engine_size_bytes"),
    }
    for k in ("max_batch_size", "max_num_tokens", "max_input_len", "max_seq_len", "max_beam_width"):
        out[f"build_{k}"] = bc.get(k)
    plugin = bc.get("plugin_config", {}) or {}
    for k in (
        "multiple_profiles",
        "use_paged_context_fmha",
        "use_fp8_context_fmha",
        "tokens_per_block",
        "gemm_plugin",
    ):
        out[f"plugin_{k}"] = plugin.get(k)
    out["runtime_max_batch_size"] = runtime["max_batch_size"]
    out["runtime_max_num_tokens"] = runtime["max_num_tokens"]
    out["enable_chunked_prefill"] = runtime["enable_chunked_prefill"]
    for section in ("kv_cache_config", "scheduler_config", "extended_runtime_perf_knob_config"):
        for k, v in runtime[section].items():
            out[f"{section}.{k}"] = v
    return out


def kv_stats(stats: Any) -> dict[str, Any]:
    """The KV pool (maxNumBlocks x tokensPerBlock) and memory accounting from get_stats() entries."""
    out: dict[str, Any] = {}
    for s in stats or []:
        if isinstance(s, str):
            with contextlib.suppress(ValueError):
                s = json.loads(s)
        if not isinstance(s, dict):
            continue
        kv = s.get("kvCacheStats") or {}
        if kv.get("maxNumBlocks") and kv.get("tokensPerBlock"):
            out["kv_cache_tokens"] = int(kv["maxNumBlocks"]) * int(kv["tokensPerBlock"])
            out["kv_cache_hit_rate"] = kv.get("cacheHitRate")
        if s.get("gpuMemUsage") is not None:
            out["executor_gpu_mem_bytes"] = s["gpuMemUsage"]
    return out
