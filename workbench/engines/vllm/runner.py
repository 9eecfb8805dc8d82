"""The opened in-process vLLM engine: `AsyncLLM` over the trial's engine arguments, every request streamed.

The engine arguments are `args.engine_args` (the same the server gets as flags), passed as
`AsyncEngineArgs(**args)`; `AsyncLLM.from_engine_args` builds the engine (weights, profiling, KV cache,
torch.compile and CUDA graphs). Requests are token-id prompts (`TokensPrompt`), greedy, with
`RequestOutputKind.DELTA`, so each output carries only the tokens new since the last one and the time
it arrives is those tokens' time, as the server's streamed chunks are for the client. What vLLM
resolved is read from its `VllmConfig` (`resolved.from_config`), so `kv_cache_tokens` is the real
capacity: `num_gpu_blocks × block_size`.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import time
from typing import Any

from workbench.engines.base import OpenContext, Request, RequestRecord
from workbench.engines.runner import EventLoopThread, Runner, RunnerStats, drain
from workbench.engines.vllm.args import auto_knobs, engine_args
from workbench.engines.vllm.resolved import from_config, kv_bytes_per_token, weights_bytes


def sampling_kwargs(req: Request, api: Any) -> dict[str, Any]:
    """SamplingParams of one request: greedy, exact length when `ignore_eos`, deltas streamed."""
    out: dict[str, Any] = {
        "max_tokens": req.max_new_tokens,
        "temperature": 0.0,
        "output_kind": api.RequestOutputKind.DELTA,
        "detokenize": bool(req.stop),
    }
    if req.ignore_eos:
        out.update(ignore_eos=True, min_tokens=req.max_new_tokens)
    if req.stop:
        out["stop"] = list(req.stop)
    return out


class VllmRunner(Runner):
    """vLLM's `AsyncLLM` in this process, driven from an event loop thread of its own."""

    counts_errors = True

    def __init__(self, api: Any, ctx: OpenContext, knobs: dict[str, Any]):
        from transformers import AutoTokenizer

        self._api, self._ctx, self.knobs = api, ctx, knobs
        self.args = engine_args(knobs, ctx)
        self.tokenizer = AutoTokenizer.from_pretrained(
            ctx.tokenizer or ctx.model_source,
            revision=ctx.model_revision,
            trust_remote_code=ctx.trust_remote_code,
        )
        self.vocab_size = int(len(self.tokenizer))
        self._done: queue.Queue[RequestRecord] = queue.Queue()
        self._lt = EventLoopThread("vllm-requests")
        t0 = time.perf_counter()
        try:
            self.engine = self._call(self._create())
        except BaseException:
            self._stop_loop()
            raise
        self.load_s = time.perf_counter() - t0
        self.resolved_config = self._resolved()

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return self._lt.run(coro, timeout)

    async def _create(self) -> Any:
        """The engine is made on the loop it will be driven from (its output handler binds to it)."""
        usage = self._api.UsageContext[self._ctx.options.usage_context]
        return self._api.AsyncLLM.from_engine_args(
            self._api.AsyncEngineArgs(**self.args), usage_context=usage
        )

    def _resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine_args": dict(self.args), "load_s": round(self.load_s, 3)}
        out.update(from_config(self.engine.vllm_config))
        out["kv_bytes_per_token"] = kv_bytes_per_token(
            self._ctx.model_source, self.knobs.get("kv_cache_dtype")
        )
        out["weights_bytes"] = weights_bytes(self._ctx.model_source, self.knobs.get("quantization"))
        out["weights_bytes_source"] = "estimate from config.json"
        out["auto_knobs"] = ",".join(auto_knobs(self.knobs)) or "none"
        out["vllm_version"] = getattr(self._api, "version", None)
        return out

    def submit(self, request: Request) -> None:
        arrival = time.perf_counter()
        self._lt.submit(self._one(request, arrival))

    async def _one(self, req: Request, arrival: float) -> None:
        rec = RequestRecord(
            id=req.id, input_len=len(req.input_ids), arrival=arrival, token_times=[], finish=0.0
        )
        try:
            sp = self._api.SamplingParams(**sampling_kwargs(req, self._api))
            prompt = self._api.TokensPrompt(prompt_token_ids=list(req.input_ids))
            text = []
            async for out in self.engine.generate(prompt, sp, req.id):
                now = time.perf_counter()
                new = list(out.outputs[0].token_ids)  # DELTA: only the tokens of this step
                rec.token_times.extend([now] * len(new))  # a step may deliver several: they arrived together
                rec.output_ids.extend(new)
                text.append(out.outputs[0].text or "")
            rec.text = "".join(text) if req.stop else None
        except Exception as e:  # noqa: BLE001 - a failed request is recorded and counted, not fatal
            rec.error = f"{type(e).__name__}: {e}"
        rec.finish = time.perf_counter()
        self._done.put(rec)

    def collect(self, timeout: float) -> list[RequestRecord]:
        return drain(self._done, timeout)

    def stats(self) -> RunnerStats:
        cfg = self.resolved_config
        return RunnerStats(
            weights_bytes=cfg.get("weights_bytes"),
            kv_cache_tokens=cfg.get("kv_cache_tokens"),
            kv_bytes_per_token=cfg.get("kv_bytes_per_token"),
            dtype=str(self.engine.vllm_config.model_config.dtype).removeprefix("torch."),
        )

    def close(self) -> None:
        try:
            self.engine.shutdown()
        finally:
            self._stop_loop()
            with contextlib.suppress(AttributeError):
                del self.engine
            gc.collect()

    def _stop_loop(self) -> None:
        self._lt.stop()
