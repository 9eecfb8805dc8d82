"""The PyTorch backend's deployable configuration: the trial's LLM arguments as trtllm-serve's `--config`.

`config.yaml` holds exactly the TorchLlmArgs the trial ran with (the same translation, args.py);
`commands.sh` makes the checkpoint (the ModelOpt build of the trial from `quantize.json`, or the
study's pre-quantized checkpoint, or the source model), serves it with `trtllm-serve MODEL --config
config.yaml` and measures it with `trtllm-bench --backend pytorch throughput` on the same YAML.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

import workbench.engines.trtllm.args as TT
import workbench.engines.trtllm.build as B
from workbench.engines.base import OpenContext
from workbench.engines.trtllm.knobs import TrtllmOptions

README_LINES = (
    "Run `bash commands.sh` on the GPU machine (TensorRT-LLM 1.2.x, PyTorch backend): it makes the",
    "quantized checkpoint exactly as the trial did (ModelOpt, `quantize.json`) where the trial built one,",
    "serves it with `trtllm-serve MODEL --config config.yaml` and shows the `trtllm-bench` command that",
    "measures it with the same YAML. Numbers measured on one GPU type hold for that GPU type.",
    "",
)


def quantize_request(knobs: dict[str, Any], ctx: OpenContext) -> dict[str, Any] | None:
    """The ModelOpt build of this trial (without the texts: the calibration source instead), or None."""
    opts: TrtllmOptions = ctx.options
    if not B.needs_build(opts, {"quantization": knobs["quantization"]}):
        return None
    try:
        src = B.calib.resolve(ctx.options, ctx.study_dir)
        calib_src: dict[str, Any] = {"kind": src.kind, "location": src.location, **src.key()}
    except B.calib.CalibError as e:
        calib_src = {"unusable": str(e)}
    return {
        "model_source": ctx.model_source,
        "revision": ctx.model_revision,
        "dtype": ctx.model_dtype,
        "device": "cuda",
        "trust_remote_code": ctx.trust_remote_code,
        "quantization": knobs["quantization"],
        "kv_cache_dtype": knobs["kv_cache_dtype"],
        "calibration": calib_src,
        "calib_samples": opts.calib_samples,
        "calib_text_field": opts.calib_text_field,
        "calib_max_seq_length": opts.calib_max_seq_length,
        "calib_batch_size": opts.calib_batch_size,
    }


def write_files(knobs: dict[str, Any], ctx: OpenContext, out: Path) -> list[Path]:
    """config.yaml, quantize.json (when the trial built a checkpoint) and commands.sh; returns the files."""
    from workbench.engines.trtllm.api import torch_snapshot

    version = torch_snapshot()["tensorrt_llm_version"]
    cfg = out / "config.yaml"
    head = (
        f"# workbench study {ctx.study}, trial {ctx.trial_id}: TensorRT-LLM {version}, PyTorch backend\n"
        "# trtllm-serve MODEL --config config.yaml / trtllm-bench ... throughput --extra_llm_api_options config.yaml\n"
    )
    cfg.write_text(
        head
        + yaml.safe_dump(
            TT.serve_options(knobs, ctx.options, ctx.model_dtype, ctx.load_format), sort_keys=False
        )
    )
    files = [cfg]
    req = quantize_request(knobs, ctx)
    if req is not None:
        qj = out / "quantize.json"
        qj.write_text(json.dumps(req, indent=2))
        files.append(qj)
    cmds = out / "commands.sh"
    cmds.write_text(commands_sh(knobs, ctx, req is not None))
    cmds.chmod(0o755)
    return [*files, cmds]


def _model_line(knobs: dict[str, Any], ctx: OpenContext, built: bool) -> list[str]:
    q = shlex.quote
    if built:
        return [
            "# 1. the quantized checkpoint, made as the trial made it (ModelOpt PTQ + export_hf_checkpoint;",
            "#    or point MODEL at the trial's build.artifact_path/checkpoint in the workbench's cache)",
            "MODEL=${MODEL:-./checkpoint}",
            '[ -f "$MODEL/hf_quant_config.json" ] || python -m workbench.engines.trtllm.modelopt_build quantize.json "$MODEL"',
        ]
    ready = B.prequantized(ctx, knobs["quantization"])
    what = "the study's pre-quantized checkpoint" if ready else "the source checkpoint (no quantization)"
    return [f"# 1. {what}", f"MODEL=${{MODEL:-{q(ready or ctx.model_source)}}}"]


def commands_sh(knobs: dict[str, Any], ctx: OpenContext, built: bool) -> str:
    """Make or name the checkpoint, serve it, and measure it with trtllm-bench on the same YAML."""
    q = shlex.quote
    serve = " ".join(map(q, TT.serve_flags(knobs, ctx.options)))
    bench = " ".join(map(q, TT.bench_throughput_flags(knobs, ctx.options)))
    name = ctx.model_id or Path(ctx.model_source).name
    lines = [
        "#!/usr/bin/env bash",
        f"# Deploy trial {ctx.trial_id} of workbench study {ctx.study} (TensorRT-LLM 1.2.x, PyTorch backend).",
        "set -euo pipefail",
        *_model_line(knobs, ctx, built),
        "",
        "# 2. serve it (OpenAI-compatible server) with the trial's LLM arguments",
        f'trtllm-serve "$MODEL" --config config.yaml {serve} --host 127.0.0.1 --port 8000',
        "",
        "# 3. measure it with trtllm-bench on the same YAML (a dataset in trtllm-bench's JSON Lines format:",
        "#    `workbench crosscheck` writes one from the trial's own requests)",
        f'trtllm-bench --model {q(name)} --model_path "$MODEL" throughput \\',
        "  --dataset dataset.jsonl --extra_llm_api_options config.yaml --streaming --report_json report.json \\",
        f"  {bench}",
    ]
    return "\n".join(lines) + "\n"
