"""The opened server engine: the server process plus the streaming client and the metrics scraper.

Opening starts the server (or, for an `openai` engine with a `url`, uses one already running), waits
for its health route, sends one real request (transformers serve creates its KV cache then) and
starts scraping its metrics. Records carry the server's token counts; prompt counts are checked
against the client's tokenizer (`usage_check`). Errors and timeouts come back as records with
`error` set, counted by the benchmark rather than dropped (`counts_errors`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import OpenContext, Request, RequestRecord
from workbench.engines.runner import Runner, RunnerStats, ServerHandle
from workbench.engines.server.client import MetricsScraper, StreamingClient, to_record
from workbench.engines.server.process import ServerError, ServerProcess, free_port


def load_tokenizer(ctx: OpenContext) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        ctx.tokenizer or ctx.model_source,
        revision=ctx.model_revision,
        trust_remote_code=ctx.trust_remote_code,
    )


def uncovered_vocabulary(ctx: OpenContext, tokenizer_len: int) -> tuple[int, float] | None:
    """For random weights: (the model's vocabulary, the share of it the tokenizer cannot decode).

    Random weights generate ids anywhere in the model's vocabulary; ids past the tokenizer's end
    decode to no text and a server streams nothing for them, so the client would time chunks, not
    tokens. Trained weights never generate the padding rows some embeddings have: None.
    """
    if ctx.load_format != "dummy":
        return None
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(ctx.model_source, trust_remote_code=ctx.trust_remote_code)
    vocab = int(getattr(cfg.get_text_config(), "vocab_size", 0) or 0)
    return (vocab, max(0.0, 1 - tokenizer_len / vocab)) if vocab else None


def check_stream_tokenizer(ctx: OpenContext, tokenizer_len: int) -> None:
    """Refuse a random-weight server trial whose tokenizer leaves more than 1 % of the ids silent."""
    found = uncovered_vocabulary(ctx, tokenizer_len)
    if found is None or found[1] <= 0.01:
        return
    vocab, share = found
    raise ServerError(
        f"random weights (model.load_format: dummy) generate ids across the model's {vocab:,} tokens, but "
        f"the tokenizer {ctx.tokenizer or ctx.model_source} has {tokenizer_len:,}: {share:.1%} of generated "
        "tokens decode to no text, the server streams nothing for them, and TTFT and inter-token latency "
        "would time chunks, not tokens. Give model.tokenizer one that covers the vocabulary: "
        f"workbench make-shape-tokenizer {ctx.model_source} <folder>"
    )


class ServerRunner(Runner):
    counts_errors = True

    def __init__(self, engine: Any, ctx: OpenContext, knobs: dict[str, Any]) -> None:
        self.engine, self.ctx, self.knobs = engine, ctx, knobs
        self.opts = engine.options(ctx)
        self.health_path, self.metrics_path, self.metrics_format = engine.routes(ctx)
        self.token_prompts = engine.prompts_as_tokens(ctx)
        self.request_fields = engine.request_fields(ctx)
        self.tokenizer = load_tokenizer(ctx)
        self.vocab_size = int(len(self.tokenizer))
        check_stream_tokenizer(ctx, self.vocab_size)
        self.proc: ServerProcess | None = None
        self.client: StreamingClient | None = None
        self.scraper: MetricsScraper | None = None
        # prompt lengths against the client's tokenizer; streamed text chunks against the server's
        # completion tokens (1 token per chunk: the client's latencies are per token)
        self.usage_check = {
            "prompt_checked": 0,
            "prompt_mismatch": 0,
            "completion_tokens": 0,
            "text_chunks": 0,
        }
        self._pending: dict[str, tuple[Request, int]] = {}
        work = Path(ctx.out_dir or tempfile.mkdtemp(prefix="workbench-server-")) / "server"
        try:
            self.base_url = self._start(work)
            self.model_name = self.opts.served_model_name or self._model_name()
            self.client = StreamingClient(
                self.base_url + "/v1/completions", self.payload, self.opts.request_timeout_s
            )
            self.ready_s = self._wait_ready()
            self._start_scraper()
        except BaseException:
            self.close()
            raise
        self.resolved_config = self._resolved()

    # ------------------------------------------------------------------------------------ opening
    def _start(self, work: Path) -> str:
        url = getattr(self.opts, "url", None)
        if url:
            return str(url).rstrip("/")
        port = free_port()
        cmd = self.engine.command(self.ctx, self.knobs, port, work)
        self.proc = ServerProcess(cmd, port, work.parent / "server.log", self.engine.server_env(self.ctx))
        self.proc.start()
        return self.proc.base_url

    def _model_name(self) -> str:
        return self.ctx.model_source

    def _wait_ready(self) -> float:
        def probe() -> None:
            (rec,) = self.generate(
                [Request("ready-probe", self._probe_ids(), 2)], timeout=self.opts.startup_timeout_s
            )
            if rec.error:
                raise ServerError(rec.error)

        if self.proc is None:
            t0 = time.monotonic()
            probe()
            return time.monotonic() - t0
        return self.proc.wait_ready(self.health_path, self.opts.startup_timeout_s, probe)

    def _probe_ids(self) -> list[int]:
        return self.tokenizer("The workbench checks that the server answers.", add_special_tokens=False)[
            "input_ids"
        ]

    def _start_scraper(self) -> None:
        if self.metrics_path is None or self.client is None:
            return
        client = self.client
        self.scraper = MetricsScraper(
            client.lt,
            self.base_url + self.metrics_path,
            self.metrics_format,
            self.opts.scrape_interval_s,
            lambda: client.inflight,
        )
        self.scraper.start()

    def _resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.base_url,
            "ready_s": round(self.ready_s, 3),
            "model": self.model_name,
        }
        if self.proc is not None:
            out["command"] = " ".join(self.proc.command)
        if self.request_fields:  # which fields, not their values (a salt is per trial and meaningless later)
            out["request_fields"] = ",".join(sorted(self.request_fields))
        out.update({f"server.{k}": v for k, v in self.engine.server_info(self).items()})
        return out

    # -------------------------------------------------------------------------------------- running
    def payload(self, request: Request) -> dict[str, Any]:
        """The body our streaming client sends for `request` (AIPerf's cross-check replays it)."""
        if self.token_prompts:
            prompt: Any = list(request.input_ids)
        else:
            prompt = self.tokenizer.decode(request.input_ids, skip_special_tokens=False)
        body: dict[str, Any] = {
            "model": self.model_name,
            "prompt": prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(self.request_fields)
        if request.ignore_eos:
            body.update(self.engine.payload_extras(self.ctx, request))
        return body

    def submit(self, request: Request) -> None:
        assert self.client is not None
        self._pending[request.id] = (request, self._client_prompt_len(request))
        self.client.submit(request)

    def _client_prompt_len(self, request: Request) -> int:
        if self.token_prompts:
            return len(request.input_ids)
        text = self.tokenizer.decode(request.input_ids, skip_special_tokens=False)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def collect(self, timeout: float) -> list[RequestRecord]:
        assert self.client is not None
        if self.proc is not None:
            self.proc.check_alive("the server")
        out = []
        for request, arrival, res in self.client.collect(timeout):
            req, client_len = self._pending.pop(request.id, (request, len(request.input_ids)))
            server_len = res.usage.get("prompt_tokens")
            if server_len is not None:
                self.usage_check["prompt_checked"] += 1
                # the server may add a BOS token the client's count leaves out
                if abs(int(server_len) - client_len) > 1:
                    self.usage_check["prompt_mismatch"] += 1
            if res.error is None and res.usage.get("completion_tokens"):
                self.usage_check["completion_tokens"] += int(res.usage["completion_tokens"])
                self.usage_check["text_chunks"] += len(res.chunk_times)
            out.append(to_record(req, arrival, res, client_len))
        if self.proc is not None and (not out or any(r.error for r in out)):
            if any(r.error for r in out):  # a broken connection: did the server die under us?
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.proc.wait(timeout=1.0)  # type: ignore[union-attr]
            self.proc.check_alive("the server")
        return out

    def server(self) -> ServerHandle:
        return ServerHandle(
            self.base_url, self.model_name, bool(self.token_prompts), self.opts.request_timeout_s
        )

    def server_metrics(self) -> list[dict[str, Any]]:
        if self.scraper is None:
            return []
        self.scraper.sample_now()
        return list(self.scraper.samples)

    def stats(self) -> RunnerStats:
        info = self.resolved_config if hasattr(self, "resolved_config") else {}

        def num(key: str) -> int | None:
            v = info.get(f"server.{key}")
            return int(float(v)) if v is not None else None

        return RunnerStats(
            weights_bytes=num("weights_bytes"),
            kv_cache_tokens=num("kv_cache_tokens"),
            kv_bytes_per_token=num("kv_bytes_per_token"),
            dtype=info.get("server.dtype"),
            scheduling_policy=info.get("server.scheduler"),
        )

    def close(self) -> None:
        if self.scraper is not None:
            self.scraper.stop()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None:
            rc = self.proc.stop(self.opts.stop_grace_s)
            if hasattr(self, "resolved_config"):
                self.resolved_config["server_exit_code"] = rc
            self.proc = None

    def describe(self) -> str:
        return json.dumps(self.resolved_config)
