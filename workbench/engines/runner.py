"""The opened engine: `Runner` (submit, collect, stats, close) and what runners share.

`Runner` declares what a runner can do beyond submitting and collecting (errors as results, a server
handle, the server's metrics, a usage check), with the defaults of one that cannot, so the trial layer
reads declarations and never probes attributes. `EventLoopThread` is the one asyncio loop thread every
streaming runner uses; `drain` is their `collect`. Nothing here imports above `workbench.types`.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from workbench.types import Request, RequestRecord


@dataclass
class RunnerStats:
    """What the trial layer reads from an opened engine for memory, KV-cache and roofline figures.

    Fields an engine cannot know stay None; the figures that need them are then left out, never 0.
    """

    #: bytes of the weights as loaded (quantized size for quantized models)
    weights_bytes: int | None = None
    #: KV-cache capacity in tokens
    kv_cache_tokens: int | None = None
    #: bytes one token of KV cache takes over all layers
    kv_bytes_per_token: int | None = None
    #: the compute dtype ("bfloat16", ...)
    dtype: str | None = None
    #: the model was already resident (loaded by an earlier point of a grid)
    model_reused: bool = False
    #: the scheduler's policy, as trtllm-bench reports it in `world_info.scheduling_policy`
    scheduling_policy: str | None = None


class EventLoopThread:
    """An asyncio event loop in a daemon thread: the one way every streaming runner (an engine's async
    generator, the HTTP client) keeps real token arrival times while the trial's thread submits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Start `coro` on the loop without waiting (its outcome is the coroutine's own business)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and join its thread; close the loop once the thread has ended."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=timeout)
        if not self.thread.is_alive():
            self.loop.close()


def drain(finished: queue.Queue[RequestRecord], timeout: float) -> list[RequestRecord]:
    """Wait up to `timeout` for one finished record, then take every other one already there (the
    `collect` of runners whose requests finish on an event loop thread)."""
    try:
        out = [finished.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            out.append(finished.get_nowait())
        except queue.Empty:
            return out


@dataclass(frozen=True)
class ServerHandle:
    """How to reach an opened server engine: what lm-eval's own OpenAI client needs for accuracy."""

    base_url: str
    model: str
    #: prompts go as token ids (false: as text the server tokenizes)
    token_prompts: bool
    request_timeout_s: float


class Runner(abc.ABC):
    """An opened engine. `submit` never blocks; `collect` returns requests that have finished.

    What a runner can do beyond that is declared here, with the default of a runner that cannot
    (`counts_errors`, `usage_check`, `server`, `server_metrics`), so the trial layer reads it and
    never probes for attributes."""

    #: the engine's resolved configuration, logged as `engine.*` params (free-form, engine-specific)
    resolved_config: dict[str, Any]
    #: the tokenizer (for dataset prompts and the accuracy adapter) and the vocabulary size
    tokenizer: Any = None
    vocab_size: int = 0
    #: a failed request is a result counted in `error_rate`, not the end of the trial (servers, vLLM)
    counts_errors: bool = False
    #: the server's token counts against the client's (prompt tokens, completion tokens per text
    #: chunk): servers only, None where the tokens are the engine's own
    usage_check: dict[str, int] | None = None

    def server(self) -> ServerHandle | None:
        """The running server of this trial; None for an in-process engine."""
        return None

    def server_metrics(self) -> list[dict[str, Any]]:
        """The server's scraped samples (`t` in the client's clock); none for an in-process engine."""
        return []

    @abc.abstractmethod
    def submit(self, request: Request) -> None: ...

    @abc.abstractmethod
    def collect(self, timeout: float) -> list[RequestRecord]:
        """Wait up to `timeout` seconds for at least one finished request; return all finished ones."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def stats(self) -> RunnerStats:
        """Weights, KV capacity and dtype as the engine resolved them; called after open and again after the run."""

    def refresh_stats(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Update `resolved_config` and `stats()` from statistics only known after running."""

    def generate(self, requests: list[Request], timeout: float | None = None) -> list[RequestRecord]:
        """Submit everything at once and wait for all of it (offline mode)."""
        for r in requests:
            self.submit(r)
        done: dict[str, RequestRecord] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(done) < len(requests):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{len(requests) - len(done)} of {len(requests)} requests unfinished")
            for rec in self.collect(timeout=0.5):
                done[rec.id] = rec
        return [done[r.id] for r in requests]

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
