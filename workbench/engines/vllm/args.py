"""The one translation of the `vllm` knobs: knob values -> vLLM engine arguments, and their two renderings.

`engine_args` gives `EngineArgs` field names and values, only for knobs that are set (null is vLLM's
own default, so nothing is passed); `serve_flags` renders those arguments as `vllm serve` flags with the
option strings recorded from vLLM 0.26.0 (`api/`), and the in-process engine passes the same dict to
`AsyncEngineArgs(**args)`. A knob therefore means the same thing in both ways to run, and the command
`workbench export` writes is the one the server ran.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.engines.base import OpenContext
from workbench.engines.vllm.knobs import FIELD, ON_THE_FLY, VllmOptions
from workbench.knobs import QUANTIZATION

#: what vLLM's quantization method is called for each ModelOpt build (the checkpoint's format)
MODELOPT_METHOD = {
    "modelopt_fp8": "modelopt",
    "modelopt_nvfp4": "modelopt_fp4",
    "modelopt_w4a16_awq": "modelopt",
}


def knob_args(knobs: dict[str, Any]) -> dict[str, Any]:
    """The engine arguments of the knobs alone: set knobs only, in a fixed order."""
    args: dict[str, Any] = {}
    for knob, field in FIELD.items():
        value = knobs.get(knob)
        if (
            value is None
            or (knob == "enforce_eager" and value is False)
            or (field == "kv_cache_dtype" and value == "auto")
        ):
            continue
        args[field] = value
    q = knobs.get(QUANTIZATION, "none")
    if q in ON_THE_FLY:
        args["quantization"] = q
    elif q in MODELOPT_METHOD:
        args["quantization"] = MODELOPT_METHOD[q]
    mode = knobs.get("cudagraph_mode")
    if mode is not None:
        args["compilation_config"] = {"cudagraph_mode": mode}
    return args


def engine_args(knobs: dict[str, Any], ctx: OpenContext, model: str | None = None) -> dict[str, Any]:
    """Every engine argument of the trial: the model and how it loads, the knobs, then the study's
    `engine_options.engine_args` (which win, as a user's explicit setting)."""
    opts: VllmOptions = ctx.options
    args: dict[str, Any] = {"model": model or ctx.model_source}
    if ctx.tokenizer:
        args["tokenizer"] = ctx.tokenizer
    if ctx.model_revision:
        args["revision"] = ctx.model_revision
    if ctx.model_dtype != "auto":
        args["dtype"] = ctx.model_dtype
    if ctx.load_format == "dummy":
        args["load_format"] = "dummy"
    if ctx.trust_remote_code:
        args["trust_remote_code"] = True
    if opts.tensor_parallel_size != 1:
        args["tensor_parallel_size"] = opts.tensor_parallel_size
    args["seed"] = opts.seed
    if opts.served_model_name:
        args["served_model_name"] = [opts.served_model_name]
    return {**args, **knob_args(knobs), **opts.engine_args}


def serve_flags(args: dict[str, Any], snap: dict[str, Any]) -> list[str]:
    """`vllm serve` flags for engine arguments (the model excluded: it is positional).

    Option strings come from the recorded parser: a boolean True is the flag, False its `--no-` form
    where vLLM has one; a dict is JSON (as `--compilation-config '{...}'` takes it); a list repeats
    the values after one flag (nargs="+")."""
    out: list[str] = []
    for field, value in args.items():
        if field == "model":
            continue
        rec = snap["engine_args"].get(field) or {}
        flag = (rec.get("flags") or ["--" + field.replace("_", "-")])[0]
        if isinstance(value, bool):
            if value:
                out.append(flag)
            else:
                out.append(rec.get("negation") or flag + "=false")
        elif isinstance(value, dict):
            out += [flag, json.dumps(value, separators=(",", ":"))]
        elif isinstance(value, (list, tuple)):
            out += [flag, *(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def serve_command(executable: str, args: dict[str, Any], port: int, snap: dict[str, Any]) -> list[str]:
    """The whole `vllm serve MODEL --host 127.0.0.1 --port P ...` command line."""
    return [
        executable,
        "serve",
        str(args["model"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *serve_flags(args, snap),
    ]


def auto_knobs(knobs: dict[str, Any]) -> list[str]:
    """The knobs left to vLLM (null): recorded so the baseline says it is vLLM's choice."""
    return sorted(k for k, v in knobs.items() if v is None)
