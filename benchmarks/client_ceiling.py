"""The load generator's ceiling: our streaming client against the trivial server on this machine.

python benchmarks/client_ceiling.py [--requests 400] [--tokens 64] [--concurrency 64] [--out FILE]
Starts `workbench.engines.server.trivial` (no delay), sends the requests through the same client the
trials use (`StreamingClient`), and prints requests/s and tokens/s received, as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

from workbench.engines.server.client import StreamingClient
from workbench.engines.server.process import ServerProcess, free_port
from workbench.types import Request


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    port = free_port()
    srv = ServerProcess(
        [sys.executable, "-m", "workbench.engines.server.trivial", "--port", str(port)],
        port,
        Path("/tmp/client_ceiling_server.log"),
    )
    srv.start()
    srv.wait_ready("/health", 60)
    payload = lambda r: {"model": "m", "prompt": r.input_ids, "max_tokens": r.max_new_tokens, "stream": True}  # noqa: E731
    client = StreamingClient(srv.base_url + "/v1/completions", payload, 60)
    reqs = [Request(f"c{i}", [1, 2, 3, 4], a.tokens) for i in range(a.requests)]
    t0, done, sent, tokens, errors = time.perf_counter(), 0, 0, 0, 0
    while sent < min(a.concurrency, len(reqs)):
        client.submit(reqs[sent])
        sent += 1
    while done < len(reqs):
        for _, _, res in client.collect(1.0):
            done += 1
            tokens += len(res.chunk_times)
            errors += res.error is not None
            if sent < len(reqs):
                client.submit(reqs[sent])
        sent += 1
    wall = time.perf_counter() - t0
    client.close()
    srv.stop()
    out = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "requests": a.requests,
        "tokens_per_request": a.tokens,
        "concurrency": a.concurrency,
        "seconds": round(wall, 3),
        "request_per_s": round(a.requests / wall, 1),
        "token_per_s": round(tokens / wall, 1),
        "errors": errors,
    }
    print(json.dumps(out))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
