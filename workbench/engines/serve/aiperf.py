"""The optional cross-check of a server engine with NVIDIA's AIPerf, run in its own environment.

AIPerf (228 MiB of wheels, ~8 processes, pins that clash with ours) is never installed beside the
workbench: `engine_options.aiperf` (default `aiperf` on PATH) names its program. `workbench crosscheck`
starts the trial's server with the trial's knobs, runs `aiperf profile` against it with the trial's
request count, concurrency and lengths, and parses `profile_export_aiperf.json`: each top-level metric
holds a stats block (`unit`, `avg`, `p50`, `p95`, ...; docs.nvidia.com/aiperf, "profile_export_aiperf.json
Schema", v0.13). Command line and parsing are pure functions, tested on a recorded example.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from workbench.engines.base import CrosscheckError, CrosscheckInput

#: our metric -> (AIPerf metric tag, stat)
AIPERF_METRICS: dict[str, tuple[str, str]] = {
    "output_tok_s": ("output_token_throughput", "avg"),
    "request_per_s": ("request_throughput", "avg"),
    **{f"ttft_ms_{s}": ("time_to_first_token", "avg" if s == "mean" else s) for s in ("mean", "p50", "p90", "p95", "p99")},
    **{f"itl_ms_{s}": ("inter_token_latency", "avg" if s == "mean" else s) for s in ("mean", "p50", "p90", "p95", "p99")},
    **{f"e2e_ms_{s}": ("request_latency", "avg" if s == "mean" else s) for s in ("mean", "p50", "p90", "p95", "p99")},
}  # fmt: skip


def profile_command(
    exe: str,
    url: str,
    model: str,
    tokenizer: str,
    requests: int,
    concurrency: int,
    isl: int,
    osl: int,
    out: Path,
) -> list[str]:
    """`aiperf profile` for the trial's workload against a running server (chat endpoint, streaming)."""
    return [exe, "profile", "--model", model, "--tokenizer", tokenizer, "--url", url, "--endpoint-type", "chat",
            "--streaming", "--concurrency", str(concurrency), "--request-count", str(requests),
            "--isl", str(isl), "--osl", str(osl), "--artifact-dir", str(out)]  # fmt: skip


def parse_export(data: dict[str, Any]) -> dict[str, float]:
    """Our metric names from `profile_export_aiperf.json` (metrics at the top level, or under `records`)."""
    blocks = data.get("records") if isinstance(data.get("records"), dict) else data
    out = {}
    for ours, (tag, stat) in AIPERF_METRICS.items():
        v = (blocks.get(tag) or {}).get(stat) if isinstance(blocks.get(tag), dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[ours] = float(v)
    return out


def compare(ours: dict[str, float], theirs: dict[str, float]) -> dict[str, dict[str, float | None]]:
    return {k: {"workbench": ours.get(k), "aiperf": v, "ratio": (v / ours[k]) if ours.get(k) else None}
            for k, v in theirs.items()}  # fmt: skip


def _device(name: Any) -> Any:
    """The device the server is started for (the launcher needs only its kind)."""
    from workbench.engines.base import DeviceInfo

    kind = "cpu" if str(name or "").startswith("cpu") else "cuda"
    return DeviceInfo(kind, kind, 0)


def run(engine: Any, inp: CrosscheckInput) -> dict[str, Any]:
    """Start the trial's server, run AIPerf against it, and return the comparison."""
    from workbench.engines.base import Artifact, OpenContext

    exe = str((inp.spec.engine_options or {}).get("aiperf", "aiperf"))
    if shutil.which(exe) is None:
        raise CrosscheckError(f"{exe} is not on PATH: install AIPerf in its own environment (pip install aiperf) "
                              "and put its bin folder on PATH or set engine_options.aiperf")  # fmt: skip
    w = inp.spec.workload
    measured = inp.requests[w.warmup_requests :] or inp.requests
    isl = round(statistics.mean(len(r.input_ids) for r in measured))
    osl = round(statistics.mean(r.max_new_tokens for r in measured))
    conc = int(getattr(w.arrival, "concurrency", None) or (w.sweep.loads[-1] if w.sweep else len(measured)))
    opts = dict(inp.spec.engine_options or {})
    ctx = OpenContext(model_source=inp.spec.model_source, device=_device(inp.spec.trial.device),
                      tokenizer=inp.spec.model.tokenizer, model_dtype=inp.spec.model.dtype, knobs=inp.knobs,
                      options=opts, out_dir=str(inp.work), load_format=inp.spec.model.load_format)  # fmt: skip
    inp.work.mkdir(parents=True, exist_ok=True)
    runner = engine().open(ctx, Artifact(Path(ctx.model_source), None, {}), inp.knobs)
    try:
        cmd = profile_command(exe, runner.base_url, runner.model_name, inp.spec.model.tokenizer or ctx.model_source,
                              len(measured), conc, isl, osl, inp.work / "aiperf")  # fmt: skip
        inp.log("$ " + " ".join(cmd))
        t0 = time.perf_counter()
        with (inp.work / "aiperf.log").open("w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        took = time.perf_counter() - t0
    finally:
        runner.close()
    found = sorted((inp.work / "aiperf").rglob("profile_export_aiperf.json"))
    if rc != 0 or not found:
        raise CrosscheckError(
            f"aiperf exited with {rc} and wrote no profile_export_aiperf.json; see {inp.work}/aiperf.log"
        )
    theirs = parse_export(json.loads(found[-1].read_text()))
    return {"metrics": compare(inp.metrics, theirs), "their_metrics": theirs, "engine_source": "the trial's server",
            "note": f"aiperf chat endpoint, concurrency {conc}, {len(measured)} requests of ~{isl}/{osl} tokens",
            "commands": [" ".join(cmd)], "timings_s": {"aiperf": took}}  # fmt: skip
