"""Server engines: an engine whose `open` starts an OpenAI-compatible server with the trial's knobs.

`ServerEngine` subclasses say how to start their server (`command`), where it tells it is ready
(`health_path`) and where its metrics are (`metrics_path`, `metrics_format`), and how a request asks
for an exact output length (`ignore_eos_payload`). The runner (`runner.py`) is the streaming client;
the server runs in the worker's environment (the study's `runtime:`: this interpreter, another venv,
a container), as a child of the worker, so it dies with it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from workbench.engines.base import Artifact, CrosscheckInput, Engine, OpenContext, Request
from workbench.engines.comparison import Crosscheck
from workbench.engines.runner import Runner
from workbench.engines.server.process import http_get
from workbench.engines.server.scrape import parse_prometheus
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef


class ServeOptions(BaseModel):
    """`engine_options:` every server engine takes."""

    model_config = ConfigDict(extra="forbid")

    startup_timeout_s: float = Field(600, gt=0, description="health, then one real request, within this")
    request_timeout_s: float = Field(
        600, gt=0, description="one request's limit; past it, it counts as a timeout"
    )
    scrape_interval_s: float = Field(0.5, gt=0, description="how often the server's /metrics is read")
    stop_grace_s: float = Field(15, gt=0, description="SIGTERM, then SIGKILL after this long")
    served_model_name: str | None = Field(
        None, description="the `model` field of requests (default: the server's)"
    )
    extra_args: list[str] = Field(default_factory=list, description="more server command-line arguments")
    env: dict[str, str] = Field(default_factory=dict, description="environment variables of the server")
    executable: str | None = Field(
        None, description="the server program (default: found beside the worker's python)"
    )
    aiperf: str = Field(
        "aiperf", description="AIPerf's program for `workbench crosscheck` (its own environment)"
    )
    aiperf_server_token_count: bool = Field(
        False,
        description="crosscheck: AIPerf counts output tokens from the server's usage, as our client does "
        "(default: its tokenizer re-encodes the output text)",
    )


def find_executable(name: str, configured: str | None = None) -> str:
    """The server program: as configured, else beside this interpreter (its venv's bin), else on PATH."""
    if configured:
        return configured
    beside = Path(sys.executable).parent / name
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name) or name


def fmt_value(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


class ServerEngine(Engine):
    """Base of server engines: nothing to build; `open` starts the server and returns the client."""

    options_model: ClassVar[type[BaseModel]] = ServeOptions
    #: the route that answers 200 once the server can take requests
    health_path: ClassVar[str] = "/health"
    #: the metrics route (None: the server has none) and its format: "prometheus" or "trtllm-json"
    metrics_path: ClassVar[str | None] = "/metrics"
    metrics_format: ClassVar[str] = "prometheus"
    #: the program whose presence `check_available` looks for (None: nothing to look for)
    program: ClassVar[str | None] = None
    install_hint: ClassVar[str] = ""
    #: the optional cross-check: NVIDIA's load generator against the trial's server (aiperf.py)
    crosscheck_tool: ClassVar[str | None] = "aiperf"
    #: prompts as token ids (vLLM, SGLang, TensorRT-LLM) rather than text (transformers serve)
    token_prompts: ClassVar[bool] = True

    @classmethod
    def check_available(cls) -> str | None:
        return cls.check_available_for(None)

    @classmethod
    def check_available_for(cls, options: ServeOptions | None) -> str | None:
        """The server program: `engine_options.executable` when the study sets one, else beside this
        interpreter or on PATH."""
        if cls.program is None:
            return None
        configured = None if options is None else options.executable
        if configured:
            p = Path(str(configured)).expanduser()
            if p.is_file() and os.access(p, os.X_OK):
                return None
            return f"engine_options.executable {configured} is not an executable file: {cls.install_hint}"
        found = find_executable(cls.program)
        if os.path.sep in found or shutil.which(found):
            return None
        return f"{cls.program} is not on PATH nor beside {sys.executable}: {cls.install_hint}"

    @classmethod
    def options(cls, ctx: OpenContext) -> Any:
        """The trial's validated options (`Engine.parse_options`; the defaults where the context has none)."""
        return cls.parse_options({}) if ctx.options is None else ctx.options

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        return False

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        """The server's command line for these knobs on 127.0.0.1:`port` (files it needs go in `work`)."""
        raise NotImplementedError

    @classmethod
    def server_env(cls, ctx: OpenContext) -> dict[str, str]:
        return dict(cls.options(ctx).env)

    @classmethod
    def ignore_eos_payload(cls, request: Request) -> dict[str, Any]:
        """Request fields for exactly `max_new_tokens` tokens (vLLM, SGLang and TensorRT-LLM's form)."""
        return {"ignore_eos": True, "min_tokens": request.max_new_tokens}

    @classmethod
    def routes(cls, ctx: OpenContext) -> tuple[str, str | None, str]:
        """(health route, metrics route or None, metrics format) of this trial's server."""
        return cls.health_path, cls.metrics_path, cls.metrics_format

    @classmethod
    def prompts_as_tokens(cls, ctx: OpenContext) -> bool:
        return cls.token_prompts

    @classmethod
    def request_fields(cls, ctx: OpenContext) -> dict[str, Any]:
        """Fields every request of this trial carries, decided once when the trial's server opens."""
        return {}

    @classmethod
    def payload_extras(cls, ctx: OpenContext, request: Request) -> dict[str, Any]:
        """Request fields for an exact output length (`request.ignore_eos`)."""
        return cls.ignore_eos_payload(request)

    @classmethod
    def server_info(cls, runner: Any) -> dict[str, Any]:
        """What the running server resolved, recorded as `server.*` (our transformers launcher reports weights,
        KV capacity and dtype on /metrics as `workbench_server_*`; {} where a server says nothing)."""
        if runner.metrics_path is None or runner.metrics_format != "prometheus":
            return {}
        status, body = http_get(runner.base_url + runner.metrics_path, timeout=5)
        if status != 200:
            return {}
        vals = parse_prometheus(body.decode(errors="replace"))
        info = {
            k.removeprefix("workbench_server_"): v
            for k, v in vals.items()
            if k.startswith("workbench_server_")
        }
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("workbench_server_info{"):
                info.update(
                    dict(
                        p.split("=", 1)
                        for p in line[line.index("{") + 1 : line.rindex("}")].replace('"', "").split(",")
                        if "=" in p
                    )
                )
        return info

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        """The server's command line for these knobs, as a shell script (port 8000)."""
        import shlex

        ctx = self.ctx
        work = out / "server"
        cmd = self.command(ctx, {**self.default_knobs(), **knobs}, 8000, work)
        p = out / "serve.sh"
        p.write_text(
            "#!/bin/sh\n# workbench study "
            + ctx.study
            + ": the measured server configuration\n"
            + "exec "
            + " ".join(shlex.quote(c) for c in cmd)
            + "\n"
        )
        files = [p]
        if work.exists():
            files += sorted(f for f in work.rglob("*") if f.is_file())
        return files

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        return {"steps_s": {}}

    @classmethod
    def crosscheck(cls, inp: CrosscheckInput) -> Crosscheck:
        """AIPerf against this trial's server (`aiperf.py`); AIPerf lives in its own environment."""
        from workbench.engines.server.aiperf import run

        return run(cls, inp)

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        return self.serve(self.ctx, runtime_knobs)

    def serve(self, ctx: OpenContext, runtime_knobs: dict[str, Any]) -> Runner:
        """Start the server of `ctx` (the trial's, or one whose model is a built artifact) and its client."""
        from workbench.engines.server.runner import ServerRunner

        return ServerRunner(type(self), ctx, {**ctx.knobs, **runtime_knobs})


def core_knobs(
    batch: int, tokens: int, fraction: float, quants: tuple[str, ...], fraction_means: str
) -> list[KnobDef]:
    """The four core knobs of a vendor server; `fraction_means` says what kv_cache_fraction is there
    (a share of free memory after the weights, or of the whole GPU: the engines differ)."""
    return [
        KnobDef(MAX_BATCH_SIZE, "int", False, batch, "most requests scheduled at once", low=1),
        KnobDef(
            KV_CACHE_FRACTION,
            "float",
            False,
            fraction,
            fraction_means,
            low=0.0,
            high=1.0,
            low_exclusive=True,
        ),
        KnobDef(MAX_NUM_TOKENS, "int", False, tokens, "token budget per step (chunked-prefill size)", low=1),
        KnobDef(
            QUANTIZATION, "categorical", False, quants[0], "on-the-fly quantization at load", choices=quants
        ),
    ]
