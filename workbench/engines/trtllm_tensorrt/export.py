"""The `trtllm-tensorrt` engine's deployable configuration, derived from the same translation the trial ran with.

`extra_llm_api_options.yaml` (runtime sections plus the build sections, for serving straight from the
Hugging Face checkpoint with the TensorRT backend), `runtime_options.yaml` (for a prebuilt engine:
trtllm-serve and trtllm-bench `--extra_llm_api_options`), `build_args.json` with `build_engine.py`
(builds and saves exactly the trial's engine through the LLM API) and `commands.sh`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

import workbench.engines.trtllm_tensorrt.args as T
from workbench.engines.base import OpenContext

README_LINES = (
    "Run `bash commands.sh` on the GPU machine: it builds the engine with `build_engine.py`, serves it",
    "with `trtllm-serve` and shows the `trtllm-bench` command that measures it. Numbers measured on one",
    "GPU type hold for that GPU type; rebuild and re-measure on another.",
    "",
)

_BUILD_SCRIPT = '''"""Build the TensorRT-LLM engine of workbench study {study}, trial {trial} (TensorRT-LLM {version}).

usage: python build_engine.py MODEL_DIR_OR_HUB_ID ENGINE_DIR
"""
import json
import sys
from pathlib import Path

from tensorrt_llm._tensorrt_engine import LLM
from tensorrt_llm.llmapi import BuildConfig, CalibConfig, QuantAlgo, QuantConfig


def main(model: str, engine_dir: str) -> None:
    args = json.loads((Path(__file__).parent / "build_args.json").read_text())
    bc = args.pop("build_config")
    plugin = bc.pop("plugin_config")
    build_config = BuildConfig(**bc)
    for key, value in plugin.items():
        setattr(build_config.plugin_config, key, value)
    q = args.pop("quant_config")
    quant_config = QuantConfig(
        quant_algo=QuantAlgo[q["quant_algo"]] if q["quant_algo"] else None,
        kv_cache_quant_algo=QuantAlgo[q["kv_cache_quant_algo"]] if q["kv_cache_quant_algo"] else None,
    )
    calib = args.pop("calib_config", None)
    extra = {{"calib_config": CalibConfig(**calib)}} if calib else {{}}
    with LLM(model=model, build_config=build_config, quant_config=quant_config, **extra, **args) as llm:
        llm.save(engine_dir)
        for step, seconds in llm.llm_build_stats.build_steps_info:
            print(f"{{step}}: {{seconds:.1f}} s")
    print(f"engine saved to {{engine_dir}}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def _yaml(path: Path, data: dict[str, Any], head: str) -> Path:
    path.write_text(head + yaml.safe_dump(data, sort_keys=False))
    return path


def write_files(knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
    """Options YAMLs, build arguments and script, and commands.sh for these knobs; returns the files."""
    from workbench.engines.base import EngineError
    from workbench.engines.trtllm.api import snapshot
    from workbench.engines.trtllm_tensorrt.build import trt_options

    dtype, fmt = ctx.model_dtype, ctx.load_format
    try:  # the calibration folder as an absolute path: relative to the study, not to where this runs
        opts = trt_options(ctx, T.quantization(knobs).needs_calibration)
    except EngineError:
        opts = ctx.options
    version = snapshot()["tensorrt_llm_version"]
    head = f"# workbench study {ctx.study}, trial {ctx.trial_id}: TensorRT-LLM {version} LLM-API options\n"
    full = _yaml(
        out / "extra_llm_api_options.yaml",
        T.extra_llm_api_options(knobs, opts, dtype, fmt),
        head
        + "# for serving from the Hugging Face checkpoint with --backend tensorrt (builds this engine)\n",
    )
    rt = _yaml(
        out / "runtime_options.yaml",
        T.runtime_args(knobs, opts.cuda_graph_cache_size),
        head + "# runtime settings for the prebuilt engine (trtllm-serve / trtllm-bench --engine_dir)\n",
    )
    ba = out / "build_args.json"
    ba.write_text(json.dumps(T.build_args(knobs, opts, dtype, fmt), indent=2))
    script = out / "build_engine.py"
    script.write_text(_BUILD_SCRIPT.format(study=ctx.study, trial=ctx.trial_id, version=version))
    cmds = out / "commands.sh"
    cmds.write_text(commands_sh(knobs, ctx))
    cmds.chmod(0o755)
    return [full, rt, ba, script, cmds]


def bench_model_args(model_id: str | None, model_source: str) -> list[str]:
    """trtllm-bench's --model is a hub name (it rejects paths); a local checkpoint goes to --model_path."""
    if model_id is not None:
        return ["--model", model_id]
    return ["--model", Path(model_source).name, "--model_path", model_source]


def _bench_build_hint(knobs: dict[str, Any], ctx: OpenContext, model: str) -> list[str]:
    why_not = T.bench_build_unsupported(knobs)
    if why_not is not None:
        return [f"# (no trtllm-bench build equivalent: {why_not})"]
    flags = " ".join(map(shlex.quote, T.bench_build_flags(knobs, ctx.options, ctx.load_format)))
    return [
        "# alternatively, a comparable engine from trtllm-bench itself (its own plugin choices; max_input_len stays 1024):",
        f"# trtllm-bench {model} build {flags}",
    ]


def commands_sh(knobs: dict[str, Any], ctx: OpenContext) -> str:
    """Build, serve and measure the trial's engine: the deploy script."""
    q = shlex.quote
    model = " ".join(map(q, bench_model_args(ctx.model_id, ctx.model_source)))
    lines = [
        "#!/usr/bin/env bash",
        f"# Deploy trial configuration of workbench study {ctx.study}. Run from this folder on the GPU machine",
        "# (TensorRT-LLM 1.2.x installed, or inside NVIDIA's TensorRT-LLM release container).",
        "set -euo pipefail",
        f"MODEL=${{MODEL:-{q(ctx.model_source)}}}",
        "ENGINE_DIR=${ENGINE_DIR:-./engine}",
        "",
        "# 1. build the engine exactly as the trial did (LLM API; BuildConfig, QuantConfig, CalibConfig in build_args.json)",
        'python build_engine.py "$MODEL" "$ENGINE_DIR"',
        "",
        "# 2. serve it (OpenAI-compatible server) with the trial's runtime settings",
        f'trtllm-serve "$ENGINE_DIR" --tokenizer {q(ctx.tokenizer or ctx.model_source)} --backend tensorrt '
        "--host 127.0.0.1 --port 8000 \\",
        "  --extra_llm_api_options runtime_options.yaml",
        "",
        "# or serve straight from the checkpoint; TensorRT-LLM builds the same engine at start-up:",
        '# trtllm-serve "$MODEL" --backend tensorrt --host 127.0.0.1 --port 8000 --extra_llm_api_options extra_llm_api_options.yaml',
        "",
        "# 3. measure it with trtllm-bench (a dataset in trtllm-bench's JSON Lines format: `workbench crosscheck` writes one)",
        f'trtllm-bench {model} throughput --engine_dir "$ENGINE_DIR" \\',
        "  --dataset dataset.jsonl --extra_llm_api_options runtime_options.yaml --streaming --report_json report.json \\",
        "  " + " ".join(map(q, T.bench_throughput_flags(knobs, ctx.options))),
        "",
        *_bench_build_hint(knobs, ctx, model),
    ]
    return "\n".join(lines) + "\n"
