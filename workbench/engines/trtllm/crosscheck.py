"""Cross-check a trial with trtllm-bench: same configuration, NVIDIA's own benchmark, numbers side by side.

`workbench crosscheck STUDY --trial N` asks the engine (`TrtllmEngine.crosscheck`, with a
`CrosscheckInput` holding the trial's own measured requests, the same seed and order as its first
repeat): `run` writes them as a trtllm-bench dataset and runs `trtllm-bench --backend pytorch
throughput --streaming --report_json` on the trial's checkpoint and `--config` YAML, and returns the
comparison; the caller logs it into the trial's MLflow run. The legacy TensorRT engine's commands
(`trtllm-bench build`, or the trial's cached engine) are in trtllm_tensorrt/crosscheck.py and run
through the same `run_commands`. Command lines and report parsing are pure functions, checked
against the recorded 1.2.x CLI and report keys.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workbench.engines.trtllm.args as TT
from workbench.engines.base import CrosscheckError, CrosscheckInput
from workbench.engines.comparison import Crosscheck, compare_metrics
from workbench.spec import StudySpec

#: our metric -> (report block, key[, percentile]) of the trtllm-bench report
REPORT_METRICS: dict[str, tuple[str, ...]] = {
    "output_tok_s": ("performance", "system_output_throughput_tok_s"),
    "total_tok_s": ("performance", "system_total_throughput_tok_s"),
    "request_per_s": ("performance", "request_throughput_req_s"),
    "per_user_output_tok_s": ("performance", "output_throughput_per_user_tok_s"),
    "e2e_ms_mean": ("performance", "avg_request_latency_ms"),
    "ttft_ms_mean": ("streaming_metrics", "avg_ttft_ms"),
    "tpot_ms_mean": ("streaming_metrics", "avg_tpot_ms"),
    **{
        f"{ours}_ms_{p}": (block, key, p)
        for ours, block, key in (
            ("e2e", "performance", "request_latency_percentiles_ms"),
            ("ttft", "streaming_metrics", "ttft_percentiles"),
            ("tpot", "streaming_metrics", "tpot_percentiles"),
        )
        for p in ("p50", "p90", "p95", "p99")
    },
}


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Our metric names from a trtllm-bench report; keys a version lacks are skipped, not guessed."""
    out = {}
    for name, path in REPORT_METRICS.items():
        node: Any = report
        for k in path:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            out[name] = float(node)
    return out


def dataset_lines(requests: list[Any]) -> list[dict[str, Any]]:
    """trtllm-bench's dataset format: one JSON object per request with token ids and the output length."""
    return [
        {"task_id": i, "input_ids": list(r.input_ids), "output_tokens": int(r.max_new_tokens)}
        for i, r in enumerate(requests)
    ]


@dataclass
class Commands:
    build: list[str] | None
    throughput: list[str]
    engine_dir: Path
    engine_source: str  # "trtllm-bench build" or "workbench engine cache"
    note: str = ""
    files: dict[str, Path] = field(default_factory=dict)


def throughput_command(
    head: list[str], spec: StudySpec, work: Path, options_yaml: str, flags: list[str], eos_id: int | None
) -> list[str]:
    """`trtllm-bench ... throughput` on the trial's dataset and workload, with the backend's flags."""
    w = spec.workload
    tp = [
        *head,
        "--dataset",
        str(work / "dataset.jsonl"),
        "--report_json",
        str(work / "trtllm_bench_report.json"),
        "--extra_llm_api_options",
        str(work / options_yaml),
        "--streaming",
        "--num_requests",
        str(w.num_requests),
        "--warmup",
        str(w.warmup_requests),
        *flags,
    ]
    if w.arrival.mode == "concurrency":
        tp += ["--concurrency", str(w.arrival.concurrency)]
    if not w.ignore_eos and eos_id is not None:
        tp += ["--eos_id", str(eos_id)]
    return tp


def torch_commands(
    spec: StudySpec,
    opts: TT.TrtllmOptions,
    knobs: dict[str, Any],
    work: Path,
    checkpoint: str,
    *,
    eos_id: int | None = None,
) -> Commands:
    """The PyTorch backend's trtllm-bench command: the trial's checkpoint and its `--config` YAML."""
    name = spec.model.id or Path(spec.model_source).name
    top = [
        opts.trtllm_bench,
        "--model",
        name,
        "--model_path",
        checkpoint,
        "--workspace",
        str(work / "bench-workspace"),
    ]
    tp = throughput_command(
        [*top, "throughput"],
        spec,
        work,
        "config.yaml",
        TT.bench_throughput_flags(knobs, opts),
        eos_id,
    )
    note = "the trial's checkpoint and LLM arguments (config.yaml); trtllm-bench warms up on the first --warmup requests"
    return Commands(None, tp, Path(checkpoint), "trial checkpoint", note)


def _torch_checkpoint(inp: CrosscheckInput) -> str:
    """What the trial loaded: its ModelOpt checkpoint, the study's pre-quantized one, or the source."""
    if inp.artifact_path is not None and (inp.artifact_path / "checkpoint").is_dir():
        return str(inp.artifact_path / "checkpoint")
    ref = inp.options.checkpoints.get(inp.knobs["quantization"])
    if ref is None and inp.knobs["quantization"] != "none":
        raise CrosscheckError(
            "the trial's quantized checkpoint is not in the cache: run the trial again, then crosscheck"
        )
    if ref is not None and inp.spec.source_path is not None and (inp.spec.source_path.parent / ref).exists():
        return str((inp.spec.source_path.parent / ref).resolve())
    return ref or inp.spec.model_source


def _execute(cmds: Commands, work: Path, log: Any) -> dict[str, float]:
    """Run the build (if any) and throughput commands, each logged to its own file; their seconds."""
    timings = {}
    for step, cmd in (("build", cmds.build), ("throughput", cmds.throughput)):
        if cmd is None:
            continue
        log(f"$ {shlex.join(cmd)}")
        t0 = time.perf_counter()
        with open(work / f"trtllm_bench_{step}.log", "w") as f:
            rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
        timings[f"{step}_s"] = time.perf_counter() - t0
        if rc != 0:
            raise CrosscheckError(
                f"trtllm-bench {step} exited with {rc}; see {work / f'trtllm_bench_{step}.log'}"
            )
    return timings


def compare(
    inp: CrosscheckInput, cmds: Commands, theirs: dict[str, float], timings: dict[str, float]
) -> Crosscheck:
    """Our numbers beside trtllm-bench's, with the commands and where the engine came from."""
    return Crosscheck(
        tool="trtllm-bench",
        metrics=compare_metrics(inp.metrics, theirs),
        engine_source=cmds.engine_source,
        note=cmds.note,
        commands={"build": cmds.build, "throughput": cmds.throughput},
        timings_s=timings,
        study=inp.spec.name,
        trial=inp.trial_number,
    )


def write_dataset(inp: CrosscheckInput) -> None:
    """The trial's own measured requests, in order, as trtllm-bench's dataset."""
    inp.work.mkdir(parents=True, exist_ok=True)
    lines = dataset_lines(inp.requests)
    (inp.work / "dataset.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def run_commands(inp: CrosscheckInput, cmds: Commands) -> Crosscheck:
    """Run trtllm-bench's commands (the dataset and options written); the comparison. The caller (the
    engine's `crosscheck`) has checked that trtllm-bench is on PATH."""
    work = inp.work
    timings = _execute(cmds, work, inp.log)
    theirs = report_metrics(json.loads((work / "trtllm_bench_report.json").read_text()))
    comparison = compare(inp, cmds, theirs, timings)
    (work / "comparison.json").write_text(json.dumps(comparison.to_json(), indent=2))
    (work / "commands.sh").write_text(
        "\n".join(shlex.join(c) for c in (cmds.build, cmds.throughput) if c is not None) + "\n"
    )
    return comparison


def run(inp: CrosscheckInput) -> Crosscheck:
    """trtllm-bench --backend pytorch on the trial's checkpoint and its `--config` YAML."""
    import yaml

    write_dataset(inp)
    spec = inp.spec
    cfg = TT.serve_options(inp.knobs, inp.options, spec.model.dtype, spec.model.load_format)
    (inp.work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run_commands(
        inp,
        torch_commands(spec, inp.options, inp.knobs, inp.work, _torch_checkpoint(inp), eos_id=inp.eos_id),
    )
