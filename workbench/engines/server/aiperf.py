"""The optional cross-check of a server engine with NVIDIA's AIPerf, run in its own environment.

AIPerf (228 MiB of wheels, ~8 processes, pins that clash with ours) is never installed beside the
workbench: `engine_options.aiperf` (default `aiperf` on PATH) names its program. `workbench crosscheck`
starts the trial's server with the trial's knobs and runs `aiperf profile` against it on the trial's OWN
requests: each measured request becomes a line of an AIPerf `single_turn` JSONL input file holding the
exact body our streaming client sends (`ServerRunner.payload`: the decoded prompt text, `max_tokens` as
`output_length`, and the remaining fields, e.g. transformers serve's `generation_config` for an exact
output length, as the line's `extra`), on the completions endpoint with streaming, at the trial's
concurrency (or Poisson rate). It then parses `profile_export_aiperf.json` (one block per metric tag:
`unit`, `avg`, `p50`, `p95`, ...). Command line, input lines and parsing are pure functions.
The AIPerf facts relied on, with their source files (AIPerf 0.13.0), are in docs/serving.md.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import CrosscheckError, CrosscheckInput
from workbench.engines.comparison import Crosscheck, compare_metrics

_STATS = ("mean", "p50", "p90", "p95", "p99")

#: our metric -> (AIPerf metric tag, stat). AIPerf's `inter_token_latency` is per request
#: (E2E - TTFT) / (output tokens - 1), which is our TPOT; its `inter_chunk_latency` (every gap between
#: streamed chunks, pooled) is our ITL.
AIPERF_METRICS: dict[str, tuple[str, str]] = {
    "output_tok_s": ("output_token_throughput", "avg"),
    "request_per_s": ("request_throughput", "avg"),
    **{f"ttft_ms_{s}": ("time_to_first_token", "avg" if s == "mean" else s) for s in _STATS},
    **{f"tpot_ms_{s}": ("inter_token_latency", "avg" if s == "mean" else s) for s in _STATS},
    **{f"itl_ms_{s}": ("inter_chunk_latency", "avg" if s == "mean" else s) for s in _STATS},
    **{f"e2e_ms_{s}": ("request_latency", "avg" if s == "mean" else s) for s in _STATS},
    "output_len_mean": ("output_sequence_length", "avg"),
    "input_len_mean": ("input_sequence_length", "avg"),
    "num_requests": ("request_count", "avg"),
    "num_errors": ("error_request_count", "avg"),
    "duration_s": ("benchmark_duration", "avg"),
}

#: body fields AIPerf's completions endpoint writes itself (aiperf/endpoints/openai_completions.py)
_OWN_FIELDS = ("model", "prompt", "max_tokens", "stream", "stream_options")


def input_line(body: dict[str, Any]) -> dict[str, Any]:
    """One AIPerf `single_turn` line for the body our client sends: `text` (the prompt), `output_length`
    (its `max_tokens`) and `extra` (every other field, merged into AIPerf's request body as it is)."""
    if not isinstance(body.get("prompt"), str):
        raise ValueError("AIPerf sends text prompts: decode token prompts first")
    line: dict[str, Any] = {"text": body["prompt"], "output_length": int(body["max_tokens"])}
    extra = {k: v for k, v in body.items() if k not in _OWN_FIELDS}
    if extra:
        line["extra"] = extra
    return line


def write_input(bodies: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(input_line(b)) + "\n" for b in bodies))
    return path


def profile_command(
    exe: str,
    url: str,
    model: str,
    tokenizer: str,
    input_file: Path,
    requests: int,
    out: Path,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    warmup: int = 0,
    seed: int | None = None,
    server_token_count: bool = False,
) -> list[str]:
    """`aiperf profile` on our requests (`input_file`, sent in order, each once) against a running server:
    completions endpoint with streaming, at a fixed concurrency or a Poisson rate."""
    if (concurrency is None) == (rate is None):
        raise ValueError("give either concurrency or rate")
    cmd = [
        exe,
        "profile",
        "--model",
        model,
        "--tokenizer",
        tokenizer,
        "--url",
        url,
        "--endpoint-type",
        "completions",
        "--streaming",
        "--input-file",
        str(input_file),
        "--custom-dataset-type",
        "single_turn",
        "--dataset-sampling-strategy",
        "sequential",
        "--request-count",
        str(requests),
    ]
    if concurrency is not None:
        cmd += ["--concurrency", str(concurrency)]
    else:
        cmd += ["--request-rate", str(rate), "--arrival-pattern", "poisson"]
    if warmup:
        cmd += ["--warmup-request-count", str(warmup)]
    if seed is not None:
        cmd += ["--random-seed", str(seed)]
    if server_token_count:
        cmd += ["--use-server-token-count"]
    return cmd + [
        "--artifact-dir",
        str(out),
        "--ui-type",
        "none",
        "--no-gpu-telemetry",
        "--no-server-metrics",
    ]


def parse_export(data: dict[str, Any]) -> dict[str, float]:
    """Our metric names from `profile_export_aiperf.json` (metric blocks at the top level, or under
    `records`); AIPerf writes latencies in ms and `benchmark_duration` in seconds (its display units)."""
    blocks = data.get("records") if isinstance(data.get("records"), dict) else data
    out = {}
    for ours, (tag, stat) in AIPERF_METRICS.items():
        v = (blocks.get(tag) or {}).get(stat) if isinstance(blocks.get(tag), dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[ours] = float(v)
    return out


def load_of(w: Any, n: int, found: float | None = None) -> tuple[int | None, float | None]:
    """(concurrency, rate) of the trial's measured run: a sweep's highest load stands for the trial (a
    load search's: the load it `found`, else its low bound), a burst sends all `n` requests at once."""
    if w.sweep is not None:
        top = (found or w.sweep.loads[0]) if w.sweep.search is not None else w.sweep.loads[-1]
        return (int(top), None) if w.sweep.axis == "concurrency" else (None, float(top))
    if getattr(w.arrival, "concurrency", None):
        return int(w.arrival.concurrency), None
    if getattr(w.arrival, "rate", None):
        return None, float(w.arrival.rate)
    return n, None


def aiperf_env(env: dict[str, str], tokenizer: str) -> dict[str, str]:
    """AIPerf's environment: with HF_HUB_OFFLINE set, AIPerf 0.13.0 looks a tokenizer up as a hub snapshot
    even when it is a local folder, and fails (common/tokenizer.py::_from_pretrained_local); a local folder
    needs no hub, so the variable is dropped then."""
    env = {**env, "TOKENIZERS_PARALLELISM": "false"}
    if Path(tokenizer).is_dir():
        env.pop("HF_HUB_OFFLINE", None)
    return env


def _bodies(runner: Any, requests: list[Any]) -> tuple[list[dict[str, Any]], list[int]]:
    """Our client's request bodies, prompts as text (an engine that sends token ids gets them decoded:
    AIPerf sends text, which the server tokenizes again), and each prompt's length as the server sees it
    (the text encoded again without special tokens, as our client and AIPerf count it)."""
    out, lens = [], []
    for r in requests:
        body = runner.payload(r)
        if not isinstance(body["prompt"], str):
            body["prompt"] = runner.tokenizer.decode(list(body["prompt"]), skip_special_tokens=False)
        out.append(body)
        lens.append(len(runner.tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]))
    return out, lens


def run(engine: Any, inp: CrosscheckInput) -> Crosscheck:
    """Start the trial's server, run AIPerf against it on the trial's requests, and return the comparison."""
    from workbench.engines.base import Artifact

    exe = inp.options.aiperf
    if shutil.which(exe) is None:
        raise CrosscheckError(
            f"{exe} is not on PATH: install AIPerf in its own environment (pip install aiperf) "
            "and put its bin folder on PATH or set engine_options.aiperf"
        )
    w = inp.spec.workload
    measured = list(inp.requests)
    conc, rate = load_of(w, len(measured), inp.metrics.get("slo_max_load"))
    if inp.open_context is None:
        raise CrosscheckError(
            "the AIPerf cross-check starts the trial's server: it needs the trial's open context"
        )
    ctx = inp.open_context()
    inp.work.mkdir(parents=True, exist_ok=True)
    out = inp.work / "aiperf"
    if out.exists():
        shutil.rmtree(out)
    runner = engine(ctx).open(Artifact(Path(ctx.model_source), None, {}), ctx.knobs)
    try:
        bodies, prompt_lens = _bodies(runner, measured)
        data = write_input(bodies, inp.work / "aiperf_input.jsonl")
        tok = inp.spec.model.tokenizer or ctx.model_source
        cmd = profile_command(
            exe,
            runner.base_url,
            runner.model_name,
            tok,
            data,
            len(measured),
            out,
            concurrency=conc,
            rate=rate,
            warmup=w.warmup_requests,
            seed=w.seed,
            server_token_count=inp.options.aiperf_server_token_count,
        )
        inp.log("$ " + " ".join(cmd))
        env = aiperf_env(dict(os.environ), tok)
        t0 = time.perf_counter()
        with (inp.work / "aiperf.log").open("w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False).returncode
        took = time.perf_counter() - t0
    finally:
        runner.close()
    found = sorted(out.rglob("profile_export_aiperf.json"))
    if rc != 0 or not found:
        raise CrosscheckError(
            f"aiperf exited with {rc} and wrote no profile_export_aiperf.json; see {inp.work}/aiperf.log"
        )
    export = json.loads(found[-1].read_text())
    shutil.copyfile(found[-1], inp.work / "profile_export_aiperf.json")
    theirs = parse_export(export)
    ours = _ours(inp.metrics, measured, prompt_lens)
    load = f"concurrency {conc}" if conc is not None else f"Poisson rate {rate}/s"
    server_counts = inp.options.aiperf_server_token_count
    counts = "server-reported" if server_counts else "its tokenizer on the output text"
    comparison = Crosscheck(
        tool="aiperf",
        metrics=compare_metrics(ours, theirs),
        engine_source="the trial's server",
        note=f"aiperf {export.get('aiperf_version', '?')}, completions endpoint, streaming, {load}, "
        f"the trial's {len(measured)} requests; output tokens counted by {counts}",
        commands={"aiperf": cmd},
        timings_s={"aiperf": took},
        study=inp.spec.name,
        trial=inp.trial_number,
    )
    _save(inp.work, comparison, cmd)
    return comparison


def _ours(metrics: dict[str, float], measured: list[Any], prompt_lens: list[int]) -> dict[str, float]:
    """The trial's metrics, plus the counts AIPerf reports that a trial's metrics leave out."""
    ours = dict(metrics)
    ours.setdefault("output_len_mean", statistics.mean(r.max_new_tokens for r in measured))
    ours.setdefault("input_len_mean", statistics.mean(prompt_lens))
    ours.setdefault("num_requests", float(len(measured)))
    ours.setdefault("num_errors", float(round(ours.get("error_rate", 0.0) * len(measured))))
    return ours


def _save(work: Path, comparison: Crosscheck, cmd: list[str]) -> None:
    (work / "comparison.json").write_text(json.dumps(comparison.to_json(), indent=2))
    (work / "commands.sh").write_text(
        "#!/bin/sh\n# the trial's server was started by workbench\n"
        + " ".join(shlex.quote(c) for c in cmd)
        + "\n"
    )
