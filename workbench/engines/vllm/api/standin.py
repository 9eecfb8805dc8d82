"""Strict stand-ins for vLLM 0.26.0, built from its recorded API, so the `vllm` engines run in tests.

They accept only what the record says vLLM accepts (argument names and types, enum members, method
signatures, `vllm serve` options) and answer only with recorded fields; anything else raises, as
vLLM would. Generation is a deterministic toy (token i of a request is `(sum(prompt) + i) % 1000`);
what they resolve follows the recorded default rule for an H200. Two faces:

- `strict_vllm()`: AsyncEngineArgs, SamplingParams, TokensPrompt, RequestOutputKind, UsageContext and
  AsyncLLM, for the in-process runner (tests put `tests/fixtures/vllm_standin` on sys.path, a `vllm`
  package whose modules re-export these at their recorded import paths);
- `serve_main(argv)`: a `vllm serve` program that refuses a command line the recorded parser would refuse
  (exit 2), then serves the trivial streaming server with vLLM's /metrics info series, /v1/models and
  /server_info, and prints vLLM's own startup-log lines.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import os
import sys
from types import SimpleNamespace
from typing import Any

from workbench.engines.vllm.api import check_engine_args, check_sampling_params, check_serve_command, snapshot

#: what the stand-in engine's KV cache holds, in blocks (num_gpu_blocks)
NUM_GPU_BLOCKS = 4096


def _defaults(snap: dict[str, Any], usage: str) -> dict[str, Any]:
    observed = snap["defaults_resolution"]["observed_tiny_llama_max_position_4096"]
    return dict(observed.get(usage) or observed["ENGINE_CONTEXT"])


def _check_call(snap: dict[str, Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call whose arguments do not bind to the recorded signature of `name`."""
    params = [p for p in snap["classes"][name]["params"] if p["name"] != "self"]
    kinds = {
        "POSITIONAL_OR_KEYWORD": inspect.Parameter.POSITIONAL_OR_KEYWORD,
        "KEYWORD_ONLY": inspect.Parameter.KEYWORD_ONLY,
        "VAR_KEYWORD": inspect.Parameter.VAR_KEYWORD,
        "VAR_POSITIONAL": inspect.Parameter.VAR_POSITIONAL,
        "POSITIONAL_ONLY": inspect.Parameter.POSITIONAL_ONLY,
    }
    sig = inspect.Signature(
        [
            inspect.Parameter(
                p["name"], kinds[p["kind"]], **({"default": p["default"]} if "default" in p else {})
            )
            for p in params
        ]
    )
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{name}: {e} (recorded signature {sig})") from None


def _record(snap: dict[str, Any], cls: str, **values: Any) -> SimpleNamespace:
    """An object of a recorded class holding only its recorded fields (unset ones None)."""
    fields = snap["classes"][cls]["fields"]
    unknown = set(values) - set(fields)
    if unknown:
        raise AttributeError(f"{cls} has no fields {sorted(unknown)} in the record")
    return SimpleNamespace(**{f: values.get(f) for f in fields})


def _engine_args_class(snap: dict[str, Any]) -> type:
    class AsyncEngineArgs:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if args:
                raise TypeError("the workbench passes engine arguments by name")
            problems = check_engine_args(kwargs, snap)
            if problems:
                raise TypeError("; ".join(problems))
            self.__dict__.update({k: v.get("default") for k, v in snap["engine_args"].items()}, **kwargs)

    return AsyncEngineArgs


def _sampling_class(snap: dict[str, Any], output_kind: Any) -> type:
    class SamplingParams:
        def __init__(self, **kwargs: Any) -> None:
            problems = check_sampling_params(kwargs, snap)
            if "output_kind" in kwargs and not isinstance(kwargs["output_kind"], output_kind):
                problems.append(f"output_kind={kwargs['output_kind']!r} is not a RequestOutputKind")
            if problems:
                raise TypeError("; ".join(problems))
            self.__dict__.update({k: v.get("default") for k, v in snap["sampling_params"].items()}, **kwargs)
            if self.output_kind == "CUMULATIVE":
                self.output_kind = output_kind.CUMULATIVE

    return SamplingParams


def _tokens_prompt(snap: dict[str, Any]) -> Any:
    def tokens_prompt(**kwargs: Any) -> dict[str, Any]:
        rec = snap["classes"]["TokensPrompt"]
        if set(kwargs) - set(rec["keys"]) or set(rec["required"]) - set(kwargs):
            raise TypeError(
                f"TokensPrompt takes {rec['keys']} (required {rec['required']}), not {sorted(kwargs)}"
            )
        return dict(kwargs)

    return tokens_prompt


def _vllm_config(snap: dict[str, Any], a: dict[str, Any], usage: str, num_gpu_blocks: int) -> SimpleNamespace:
    """The resolved configuration the recorded default rule gives for these engine arguments."""
    d = _defaults(snap, usage)
    block = a.get("block_size") or d["block_size"]
    max_len = a.get("max_model_len") or d["max_model_len"]
    prefix = (
        d["enable_prefix_caching"] if a.get("enable_prefix_caching") is None else a["enable_prefix_caching"]
    )
    cache = _record(
        snap,
        "CacheConfig",
        block_size=block,
        num_gpu_blocks=num_gpu_blocks,
        kv_cache_size_tokens=num_gpu_blocks * block,
        kv_cache_max_concurrency=num_gpu_blocks * block / max_len,
        gpu_memory_utilization=a["gpu_memory_utilization"],
        cache_dtype=a["kv_cache_dtype"],
        enable_prefix_caching=prefix,
    )
    sched = _record(
        snap,
        "SchedulerConfig",
        max_num_seqs=a.get("max_num_seqs") or d["max_num_seqs"],
        max_num_batched_tokens=a.get("max_num_batched_tokens") or d["max_num_batched_tokens"],
    )
    model = _record(snap, "ModelConfig", max_model_len=max_len, dtype=a.get("dtype") or "bfloat16")
    return _record(snap, "VllmConfig", cache_config=cache, scheduler_config=sched, model_config=model)


def _outputs(snap: dict[str, Any], sp: Any, prompt: dict[str, Any], request_id: str, kinds: Any) -> list[Any]:
    """Every RequestOutput the toy generation yields for one request, in order."""
    start, made, out = sum(prompt["prompt_token_ids"]), [], []
    n = int(sp.max_tokens)
    for i in range(n):
        made.append((start + i) % 1000)
        done = i == n - 1
        if sp.output_kind == kinds.FINAL_ONLY and not done:
            continue
        ids = [made[-1]] if sp.output_kind == kinds.DELTA else list(made)
        comp = _record(
            snap,
            "CompletionOutput",
            index=0,
            text="",
            token_ids=ids,
            finish_reason="length" if done else None,
        )
        out.append(
            _record(
                snap,
                "RequestOutput",
                request_id=request_id,
                prompt_token_ids=prompt["prompt_token_ids"],
                outputs=[comp],
                finished=done,
            )
        )
    return out


def _async_llm_class(snap: dict[str, Any], ns: SimpleNamespace, num_gpu_blocks: int) -> type:
    class AsyncLLM:
        def __init__(self, engine_args: Any, usage: Any) -> None:
            self.vllm_config = _vllm_config(snap, engine_args.__dict__, usage.name, num_gpu_blocks)
            self.stopped = False

        @classmethod
        def from_engine_args(cls, *args: Any, **kwargs: Any) -> AsyncLLM:
            _check_call(snap, "AsyncLLM.from_engine_args", args, kwargs)
            engine_args = args[0] if args else kwargs["engine_args"]
            usage = kwargs.get("usage_context", ns.UsageContext.ENGINE_CONTEXT)
            if not isinstance(engine_args, ns.AsyncEngineArgs) or not isinstance(usage, ns.UsageContext):
                raise TypeError("from_engine_args takes an AsyncEngineArgs and a UsageContext")
            return cls(engine_args, usage)

        async def generate(self, *args: Any, **kwargs: Any) -> Any:
            _check_call(snap, "AsyncLLM.generate", args, kwargs)
            prompt, sp, request_id = args[0], args[1], args[2]
            if self.stopped:
                raise RuntimeError("the engine was shut down")
            if not isinstance(sp, ns.SamplingParams) or not isinstance(prompt, dict):
                raise TypeError("generate takes a prompt and SamplingParams")
            for out in _outputs(snap, sp, prompt, request_id, ns.RequestOutputKind):
                await asyncio.sleep(0)
                yield out

        def shutdown(self, *args: Any, **kwargs: Any) -> None:
            _check_call(snap, "AsyncLLM.shutdown", args, kwargs)
            self.stopped = True

    return AsyncLLM


def strict_vllm(snap: dict[str, Any] | None = None, num_gpu_blocks: int = NUM_GPU_BLOCKS) -> SimpleNamespace:
    """The in-process face: every name the `vllm-inprocess` runner imports, strict."""
    snap = snap or snapshot()
    kinds = enum.Enum("RequestOutputKind", {m: i for i, m in enumerate(snap["enums"]["RequestOutputKind"])})
    ns = SimpleNamespace(
        AsyncEngineArgs=_engine_args_class(snap),
        SamplingParams=_sampling_class(snap, kinds),
        TokensPrompt=_tokens_prompt(snap),
        RequestOutputKind=kinds,
        UsageContext=enum.Enum("UsageContext", {m: m for m in snap["enums"]["UsageContext"]}),
        version=snap["vllm_version"],
    )
    ns.AsyncLLM = _async_llm_class(snap, ns, num_gpu_blocks)
    return ns


@functools.cache
def shared() -> SimpleNamespace:
    """The one stand-in API the `tests/fixtures/vllm_standin` package re-exports (one class identity)."""
    return strict_vllm()


# ------------------------------------------------------------------------------------------ vllm serve
def _option(argv: list[str], flag: str, default: Any = None) -> Any:
    return argv[argv.index(flag) + 1] if flag in argv else default


def cache_info_line(snap: dict[str, Any], values: dict[str, Any]) -> str:
    """`vllm:cache_config_info{...} 1.0` with the recorded label names (values as strings, unset 'None')."""
    labels = snap["metrics"]["vllm:cache_config_info"]["labels"]
    return "vllm:cache_config_info{" + ",".join(f'{k}="{values.get(k, "None")}"' for k in labels) + "} 1.0\n"


def serve_main(argv: list[str] | None = None) -> int:
    """`vllm serve MODEL ...` as the stand-in: refused like vLLM's parser refuses, else served."""
    argv = list(sys.argv[1:] if argv is None else argv)
    snap = snapshot()
    problems = check_serve_command(["vllm", *argv], snap)
    if problems:
        print("vllm: error: " + "; ".join(problems), file=sys.stderr, flush=True)
        return 2
    d = _defaults(snap, "OPENAI_API_SERVER")
    block = int(_option(argv, "--block-size", d["block_size"]))
    max_len = int(_option(argv, "--max-model-len", d["max_model_len"]))
    seqs = int(_option(argv, "--max-num-seqs", d["max_num_seqs"]))
    tokens = int(_option(argv, "--max-num-batched-tokens", d["max_num_batched_tokens"]))
    kv_tokens = NUM_GPU_BLOCKS * block
    info = {
        "block_size": block,
        "num_gpu_blocks": NUM_GPU_BLOCKS,
        "kv_cache_size_tokens": kv_tokens,
        "gpu_memory_utilization": _option(argv, "--gpu-memory-utilization", 0.92),
        "cache_dtype": _option(argv, "--kv-cache-dtype", "auto"),
        "kv_cache_max_concurrency": kv_tokens / max_len,
    }
    print(f"non-default args: {argv[2:]}", flush=True)
    print(f"Chunked prefill is enabled with max_num_batched_tokens={tokens}.", flush=True)
    print(f"GPU KV cache size: {kv_tokens:,} tokens", flush=True)
    return _serve(
        argv, snap, info, {"max_model_len": max_len, "max_num_seqs": seqs, "max_num_batched_tokens": tokens}
    )


def _serve(argv: list[str], snap: dict[str, Any], info: dict[str, Any], sched: dict[str, Any]) -> int:
    from aiohttp import web

    from workbench.engines.server.trivial import make_app

    app = make_app("ok", 0.0, extra_metrics=cache_info_line(snap, info))
    model = argv[1]
    served = _option(argv, "--served-model-name", model)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": served, "object": "model", "max_model_len": sched["max_model_len"]}],
            }
        )

    async def server_info(_: web.Request) -> web.Response:
        body = {
            "vllm_config": {
                "scheduler_config": {k: sched[k] for k in ("max_num_seqs", "max_num_batched_tokens")}
            }
        }
        return web.json_response(body)

    app.router.add_get("/v1/models", models)
    if os.environ.get("VLLM_SERVER_DEV_MODE") == "1":  # as vLLM: the dev routes only in dev mode
        app.router.add_get("/server_info", server_info)
    web.run_app(
        app,
        host=str(_option(argv, "--host", "127.0.0.1")),
        port=int(_option(argv, "--port", 8000)),
        print=None,
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(serve_main())
