"""`openai`: any OpenAI-compatible server, started from a command template or already running.

`engine_options.command` is a template with `{port}`, `{model}` and knob placeholders
(`{max_batch_size}`, `{kv_cache_fraction}`, `{max_num_tokens}`, `{quantization}`), split like a shell
line; `engine_options.url` measures a server that is already up (nothing is started or stopped, so
only its knobs' recorded values change between trials, not the server). Such a server's prefix
cache outlives a trial: a later trial with the same prompts (the same workload seed) would be served
from it and measure fast. `cache_salt_field` names the request field the server salts its prefix
cache with (vLLM: `cache_salt`, a `CompletionRequest` field in vllm/entrypoints/openai/completion/
protocol.py of 0.26.0); each trial then sends a salt of its own.
"""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from workbench.engines.base import OpenContext, Request
from workbench.engines.server.base import ServeOptions, ServerEngine, core_knobs


class OpenAIOptions(ServeOptions):
    command: str | None = Field(None, description="server command template with {port} and knob placeholders")
    url: str | None = Field(None, description="an already running server, e.g. http://127.0.0.1:8000")
    health_path: str = "/health"
    metrics_path: str | None = "/metrics"
    metrics_format: str = Field("prometheus", pattern="^(prometheus|trtllm-json)$")
    token_prompts: bool = Field(True, description="send prompts as token ids (false: as text)")
    cache_salt_field: str | None = Field(
        None,
        description="request field salting the server's prefix cache (vLLM: cache_salt); every trial "
        "sends its own salt, so a long-lived server holds nothing of an earlier trial's prompts",
    )
    ignore_eos_fields: dict[str, Any] = Field(
        default_factory=lambda: {"ignore_eos": True}, description="request fields for exact output lengths"
    )

    @model_validator(mode="after")
    def _one_source(self) -> OpenAIOptions:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (a template with {port}) or `url`")
        if self.command is not None and "{port}" not in self.command:
            raise ValueError("the command template must contain {port} (the server binds 127.0.0.1:{port})")
        return self


class OpenAIEngine(ServerEngine):
    name = "openai"
    version = "1"
    options_model = OpenAIOptions
    knobs = {
        k.name: k
        for k in core_knobs(
            256,
            8192,
            0.9,
            ("none", "fp8", "int8", "int4"),
            "passed to the command template as {kv_cache_fraction}: its meaning is the server's",
        )
    }

    @classmethod
    def routes(cls, ctx: OpenContext) -> tuple[str, str | None, str]:
        o = cls.options(ctx)
        return o.health_path, o.metrics_path, o.metrics_format

    @classmethod
    def prompts_as_tokens(cls, ctx: OpenContext) -> bool:
        return bool(cls.options(ctx).token_prompts)

    @classmethod
    def command(cls, ctx: OpenContext, knobs: dict[str, Any], port: int, work: Path) -> list[str]:
        o = cls.options(ctx)
        if o.command is None:
            return []
        try:
            line = o.command.format(port=port, model=ctx.model_source, **knobs)
        except KeyError as e:
            raise ValueError(f"the command template names {e}, which is no knob of this trial") from None
        return shlex.split(line) + list(o.extra_args)

    @classmethod
    def request_fields(cls, ctx: OpenContext) -> dict[str, Any]:
        """A fresh prefix-cache salt per opened trial (a resumed trial id gets a new one too)."""
        field = cls.options(ctx).cache_salt_field
        return {field: f"{ctx.study}-{ctx.trial_id}-{secrets.token_urlsafe(16)}"} if field else {}

    @classmethod
    def ignore_eos_payload(cls, request: Request) -> dict[str, Any]:
        return {"ignore_eos": True}

    @classmethod
    def payload_extras(cls, ctx: OpenContext, request: Request) -> dict[str, Any]:
        return dict(cls.options(ctx).ignore_eos_fields)
