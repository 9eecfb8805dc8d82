"""Our transformers-serve launcher: `python -m workbench.engines.hf.launcher CONFIG.json`.

`transformers serve` (5.23) lacks flags for `max_requests_per_batch`, `use_async_batching` and
`auto_switch_to_flash` (with flash kernels present it silently swaps the attention), and has no
/metrics. This launcher builds the same app from transformers' public serving pieces
(transformers/cli/serving/: ModelManager, the handlers, `build_server`, and `GenerationState` with a
full `ContinuousBatchingConfig`), preloads the model (random weights for load_format dummy, torchao
quantization in place), adds a Prometheus `/metrics` route, honours `stop` in non-streaming
completions (the CB path ignores it), then runs uvicorn on 127.0.0.1. Facts relied on: docs/serving.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """The model (from the checkpoint, or random in its shape) and its tokenizer."""
    from workbench.engines.base import Artifact, OpenContext
    from workbench.engines.hf.runner import load_model, load_tokenizer
    from workbench.types import DeviceInfo

    ctx = OpenContext(
        model_source=cfg["model"],
        device=DeviceInfo(cfg["device"], cfg["device"], 0),
        model_revision=cfg.get("revision"),
        tokenizer=cfg.get("tokenizer"),
        model_dtype=cfg.get("dtype", "auto"),
        load_format=cfg.get("load_format", "auto"),
        trust_remote_code=bool(cfg.get("trust_remote_code")),
        knobs={"quantization": cfg.get("quantization", "none")},
    )
    artifact = Artifact(Path(cfg["model"]), None, {"source": True})
    model, _, _ = load_model(ctx, artifact, cfg["attn_implementation"])
    if cfg.get("load_format") != "dummy" and cfg.get("quantization", "none") != "none":
        from workbench.engines.hf.quantize import quantize_in_place

        quantize_in_place(model, cfg["quantization"])
    return model.eval(), load_tokenizer(ctx)


def stop_aware_completions(base: type) -> type:
    """The completion handler, with OpenAI's `stop` applied to non-streaming answers."""
    from fastapi.responses import JSONResponse

    class StopAwareCompletionHandler(base):  # type: ignore[misc, valid-type]
        async def _non_streaming(
            self, request_id, model, processor, model_id, inputs, gen_config, gen_manager, suffix=None
        ):
            resp = await super()._non_streaming(
                request_id, model, processor, model_id, inputs, gen_config, gen_manager, suffix
            )
            stops = gen_config.stop_strings
            stops = [stops] if isinstance(stops, str) else list(stops or [])
            if not stops:
                return resp
            data = json.loads(resp.body)
            for choice in data.get("choices", []):
                cuts = [i for i in (choice["text"].find(s) for s in stops if s) if i >= 0]
                if cuts:
                    choice["text"], choice["finish_reason"] = choice["text"][: min(cuts)], "stop"
            return JSONResponse(data)

    return StopAwareCompletionHandler


def metrics_text(state: Any, model: Any, static: dict[str, Any]) -> str:
    """Prometheus text: KV usage, running and waiting requests, and what the trial records about the server."""
    lines = [
        f"workbench_server_{k} {v}"
        for k, v in static.items()
        if isinstance(v, (int, float)) and k != "page_size"
    ]
    info = ",".join(f'{k}="{static[k]}"' for k in ("dtype", "scheduler", "attn"))
    lines.append("workbench_server_info{" + info + "} 1")
    cb = getattr(getattr(state, "_cb_manager", None), "_cb", None)
    bp = getattr(cb, "batch_processor", None)
    if bp is not None:
        cache, sched = bp.cache, bp.scheduler
        lines.append(f"workbench_kv_cache_usage {1.0 - float(cache.compute_free_capacity()):.6f}")
        page = int(getattr(cache, "page_size", static["page_size"]))
        lines.append(f"workbench_server_kv_cache_tokens {int(cache.num_blocks) * page}")
        lines.append(f"workbench_requests_running {len(sched.active_requests)}")
        lines.append(f"workbench_requests_waiting {len(sched.waiting_requests)}")
    return "\n".join(lines) + "\n"


def build_app(cfg: dict[str, Any]) -> Any:
    from fastapi.responses import PlainTextResponse
    from transformers import ContinuousBatchingConfig
    from transformers.cli.serving import completion, model_manager, server, utils
    from transformers.cli.serving.chat_completion import ChatCompletionHandler
    from transformers.cli.serving.response import ResponseHandler
    from transformers.cli.serving.systemone import SystemOneHandler
    from transformers.cli.serving.transcription import TranscriptionHandler

    from workbench.engines.hf.runner import kv_bytes_per_token, tensor_bytes

    model, tokenizer = load(cfg)
    mm = model_manager.ModelManager(
        device=cfg["device"],
        dtype=cfg.get("dtype", "auto"),
        attn_implementation=cfg["attn_implementation"],
        continuous_batching=True,
    )
    name = cfg["served_model_name"]
    mm.force_model, mm.model_timeout = name, -1
    mm.loaded_models[mm.process_model_name(name)] = model_manager.TimedModel(model, -1, processor=tokenizer)
    state = utils.GenerationState(continuous_batching=True, cb_config=ContinuousBatchingConfig(**cfg["cb"]))
    handlers = dict(model_manager=mm, generation_state=state)
    app = server.build_server(
        mm,
        ChatCompletionHandler(**handlers),
        completion_handler=stop_aware_completions(completion.CompletionHandler)(**handlers),
        response_handler=ResponseHandler(**handlers),
        transcription_handler=TranscriptionHandler(mm, state),
        systemone_handler=SystemOneHandler(**handlers),
        generation_state=state,
    )
    static = {
        "weights_bytes": sum(tensor_bytes(p) for p in model.parameters()),
        "kv_bytes_per_token": kv_bytes_per_token(model.config, model.dtype.itemsize),
        "dtype": str(model.dtype).removeprefix("torch."),
        "scheduler": cfg["cb"].get("scheduler_type", "fifo"),
        "attn": cfg["attn_implementation"],
        "page_size": int(cfg["cb"].get("page_size", 256)),
    }

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics_text(state, model, static))

    return app


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m workbench.engines.hf.launcher CONFIG.json", file=sys.stderr)
        return 2
    cfg = json.loads(Path(argv[0]).read_text())
    if cfg.get("switch_interval_ms"):
        sys.setswitchinterval(float(cfg["switch_interval_ms"]) / 1000)
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    import uvicorn

    app = build_app(cfg)
    print(
        f"workbench transformers-serve launcher: {cfg['served_model_name']} on 127.0.0.1:{cfg['port']}",
        flush=True,
    )
    uvicorn.run(app, host="127.0.0.1", port=int(cfg["port"]), log_level=cfg.get("log_level", "warning"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
