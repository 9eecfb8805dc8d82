"""A trivial OpenAI-compatible streaming server: the load generator's ceiling and failure tests.

`python -m workbench.engines.server.trivial --port P [--mode ok|exit|hang|die-after:N|no-health|knee:N:MS]
[--delay-ms D]` streams `max_tokens` one-token chunks as fast as it can (or D ms apart) with `usage` in
the last chunk and `[DONE]`, serves /health and a Prometheus /metrics. The modes misbehave on purpose:
`exit` exits at start, `hang` never answers /health, `die-after:N` kills itself after N requests,
`knee:N:MS` is a server whose latency rises past a known load: once more than N requests run at once,
every token waits MS ms until it is idle again (so a closed loop of <= N never sees it, one of > N
always does, however fast the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys


def make_app(mode: str, delay_ms: float, extra_metrics: str = ""):  # noqa: ANN201 - aiohttp imported lazily
    from aiohttp import web

    state = {"requests": 0, "running": 0, "slow": False}
    die_after = int(mode.split(":")[1]) if mode.startswith("die-after:") else None
    knee, knee_ms = (
        (int(mode.split(":")[1]), float(mode.split(":")[2])) if mode.startswith("knee:") else (None, 0.0)
    )

    async def health(_: web.Request) -> web.Response:
        if mode == "hang":
            await asyncio.sleep(3600)
        return web.json_response({"status": "ok"})

    async def metrics(_: web.Request) -> web.Response:
        text = f"trivial_requests_total {state['requests']}\nvllm:num_requests_running {state['running']}\n"
        return web.Response(
            text=text + "vllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0.0\n" + extra_metrics
        )

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state["requests"] += 1
        if die_after is not None and state["requests"] > die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        n = int(body.get("max_tokens") or 16)
        prompt = body.get("prompt")
        n_prompt = len(prompt) if isinstance(prompt, list) else len(str(prompt).split())
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        state["running"] += 1
        if knee is not None and state["running"] > knee:
            state["slow"] = True
        try:
            for i in range(n):
                chunk = {"choices": [{"index": 0, "text": f" t{i}", "finish_reason": None}]}
                await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                if state["slow"]:
                    await asyncio.sleep(knee_ms / 1000)
            usage = {"prompt_tokens": n_prompt, "completion_tokens": n, "total_tokens": n_prompt + n}
            last = {"choices": [{"index": 0, "text": "", "finish_reason": "length"}], "usage": usage}
            await resp.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        finally:
            state["running"] -= 1
            if state["running"] == 0:
                state["slow"] = False
        return resp

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/completions", completions)
    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--tag", default="", help="ignored: names the process, so a test can find it")
    a = p.parse_args(argv)
    print(f"trivial server: mode {a.mode} on 127.0.0.1:{a.port}", flush=True)
    if a.mode == "exit":
        print("trivial server: exiting at start on purpose", flush=True)
        return 3
    from aiohttp import web

    web.run_app(make_app(a.mode, a.delay_ms), host="127.0.0.1", port=a.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
