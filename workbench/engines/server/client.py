"""The load generator's streaming client: OpenAI `/v1/completions` over SSE, timed at arrival.

Everything runs on one asyncio loop in a background thread, so the trial layer's `drive` (burst,
Poisson rate, fixed concurrency) submits without blocking. Per request: the arrival time when the
request is sent, one timestamp per streamed chunk that carries text, the server's `usage` (prompt and
completion tokens; a chunk holding several tokens gives its time to each of them), and errors or
timeouts as records with `error` set, never dropped. Times are `time.perf_counter()` seconds, like
the in-process engines'.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.engines.runner import EventLoopThread
from workbench.engines.server.scrape import normalize
from workbench.types import Request, RequestRecord


@dataclass
class StreamResult:
    """What one streamed request returned, before it becomes a RequestRecord."""

    chunk_times: list[float] = field(default_factory=list)
    text: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    finish_reason: str | None = None
    #: arrival of the last chunk of any kind (the usage chunk when no text came)
    last_time: float | None = None


def token_times(res: StreamResult) -> list[float]:
    """One time per output token: chunk times, the last chunk's time repeated for tokens `usage` adds."""
    n = int(res.usage.get("completion_tokens") or len(res.chunk_times))
    times = list(res.chunk_times[:n])
    if not times and n and res.last_time is not None:
        # tokens that decode to no text (random prompts) stream nothing: they arrived by the last chunk
        times = [res.last_time]
    if times and len(times) < n:
        times += [times[-1]] * (n - len(times))
    return times


def parse_sse_line(line: bytes, res: StreamResult, now: float) -> bool:
    """Fold one SSE line into `res`; True at the end of the stream (`[DONE]` or an error)."""
    text = line.decode(errors="replace").strip()
    if not text.startswith("data:"):
        return False
    data = text[5:].strip()
    if data == "[DONE]":
        return True
    try:
        obj = json.loads(data)
    except json.JSONDecodeError:
        res.error = f"malformed stream chunk: {data[:200]}"
        return True
    res.last_time = now
    if obj.get("error"):
        res.error = f"server error in stream: {obj['error']}"[:500]
        return True
    for choice in obj.get("choices") or []:
        piece = choice.get("text")
        if piece is None:
            piece = (choice.get("delta") or {}).get("content")
        if piece:
            res.chunk_times.append(now)
            res.text += piece
        res.finish_reason = choice.get("finish_reason") or res.finish_reason
    if obj.get("usage"):
        res.usage = {k: int(v) for k, v in obj["usage"].items() if isinstance(v, (int, float))}
    return False


async def stream_completion(
    session: Any, url: str, payload: dict[str, Any], timeout_s: float
) -> StreamResult:
    """POST one streaming completion; read its SSE lines as they arrive."""
    import aiohttp

    res = StreamResult()
    try:
        async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            if r.status != 200:
                body = (await r.text())[:500]
                res.error = f"HTTP {r.status}: {body}"
                return res
            async for line in r.content:
                if parse_sse_line(line, res, time.perf_counter()):
                    break
    except asyncio.TimeoutError:
        res.error = f"timeout: no complete answer within {timeout_s:g} s"
    except aiohttp.ClientError as e:
        res.error = f"{type(e).__name__}: {e}"[:500]
    return res


class LoopThread(EventLoopThread):
    """The client's event loop thread, with one aiohttp session (unlimited connections)."""

    def __init__(self) -> None:
        super().__init__("workbench-client")
        self.session: Any = self.run(self._session())

    async def _session(self) -> Any:
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False))

    def spawn(self, coro: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(coro))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.run(self.session.close(), timeout=10)
        finally:
            self.stop()


class MetricsScraper:
    """Polls the server's metrics route every `interval_s` on the client's loop; keeps every sample."""

    def __init__(self, lt: LoopThread, url: str, fmt: str, interval_s: float, inflight: Callable[[], int]):
        self.lt, self.url, self.fmt, self.interval = lt, url, fmt, interval_s
        self.inflight = inflight
        self.samples: list[dict[str, Any]] = []
        self._task: Any = None

    def start(self) -> None:
        self.lt.loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        self._task = self.lt.loop.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await self._sample()
            await asyncio.sleep(self.interval)

    async def _sample(self) -> None:
        import aiohttp

        t = time.perf_counter()
        body = None
        try:
            async with self.lt.session.get(self.url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                body = await r.read() if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            body = None
        sample: dict[str, Any] = {"t": t, "inflight": self.inflight()}
        if body is not None:
            sample.update(normalize(body, self.fmt))
        self.samples.append(sample)

    def sample_now(self, timeout_s: float = 10.0) -> None:
        """One more sample, now: a measured run shorter than the interval still ends with one."""
        fut = asyncio.run_coroutine_threadsafe(self._sample(), self.lt.loop)
        with contextlib.suppress(Exception):
            fut.result(timeout_s)

    def stop(self) -> None:
        if self._task is not None:
            self.lt.loop.call_soon_threadsafe(self._task.cancel)


class StreamingClient:
    """Submit requests without blocking, collect finished records; counts what is in flight."""

    def __init__(self, url: str, make_payload: Callable[[Request], dict[str, Any]], timeout_s: float):
        self.url, self.make_payload, self.timeout_s = url, make_payload, timeout_s
        self.lt = LoopThread()
        self.done: queue.Queue[tuple[Request, float, StreamResult]] = queue.Queue()
        self.inflight = 0

    def submit(self, request: Request) -> None:
        payload = self.make_payload(request)
        self.inflight += 1
        self.lt.spawn(self._one(request, payload))

    async def _one(self, request: Request, payload: dict[str, Any]) -> None:
        arrival = time.perf_counter()
        res = await stream_completion(self.lt.session, self.url, payload, self.timeout_s)
        self.inflight -= 1
        self.done.put((request, arrival, res))

    def collect(self, timeout: float) -> list[tuple[Request, float, StreamResult]]:
        out = []
        try:
            out.append(self.done.get(timeout=max(timeout, 0.0)))
            while True:
                out.append(self.done.get_nowait())
        except queue.Empty:
            pass
        return out

    def close(self) -> None:
        self.lt.close()


def to_record(request: Request, arrival: float, res: StreamResult, input_len: int) -> RequestRecord:
    times = token_times(res) if res.error is None else list(res.chunk_times)
    return RequestRecord(
        id=request.id,
        input_len=int(res.usage.get("prompt_tokens") or input_len),
        arrival=arrival,
        token_times=times,
        finish=times[-1] if times else time.perf_counter(),
        error=res.error if res.error is not None else (None if times else "the stream carried no tokens"),
        text=res.text,
    )
