"""Issue #19's GPU figures: vLLM 0.26.0 tuned end to end on one H200, one phase per device command.

  compare  one `vllm serve` at vLLM's own defaults; `vllm bench serve` and our client (`workbench trial`,
           engine `openai` with its `url`) alternated `--reps` times at concurrency 1, 64 and 256, each run
           sized to last at least ~20 s: median ratios of output tok/s, TTFT p50 and TPOT p50.
  study    `workbench tune` over the four core knobs (quantization none / fp8) with the SLO (TTFT p95 < 200
           ms, TPOT p95 < 50 ms) and goodput at the highest load meeting it as the objective; trial 0 is
           vLLM's own defaults. SQLite storage under --out, `--tracking-uri none`.
  confirm  the study's best and vLLM's defaults as single `vllm` trials, alternated (d, b, d, b), then the
           defaults once more in-process (`vllm-inprocess`): best/defaults and server/in-process, one call.
  ceiling  our streaming client against the trivial server on this host (benchmarks/client_ceiling.py).
  paths    the same knobs (KNOBS) and sweep (PATH_SWEEP) through `vllm-inprocess`, then the `vllm` server
           with GSM8K (the committed 64-question sample, lm-eval local-completions): the HTTP path's cost,
           and GSM8K questions per second through the server.
  server   the paths phase's server trial alone (when the in-process side is already measured).
  modelopt ModelOpt FP8 and NVFP4 checkpoints of the random-weight shape, built by the trial's build step
           and served by `vllm` (eager, to spend the minutes on whether and how fast each serves).
  hf       transformers' continuous batching (`hf`) at the same knobs, sweep and GSM8K sample: the
           vLLM-against-transformers table, from the same call as `paths`.

`--phases compare,paths,modelopt,hf --deadline 1300` runs the lot as one background job across
consecutive device calls (benchmarks/gpu_session.sh); summary.json is rewritten after every run.

    python3 benchmarks/vllm_gpu.py --out $OUT --phases compare --deadline 560
    python3 benchmarks/vllm_gpu.py --out $OUT --phases study --deadline 560
    python3 benchmarks/vllm_gpu.py --out $OUT --phases confirm,ceiling --deadline 560 --study-db $OUT/../study.db

vLLM comes from /tmp/site (../shared/tools/gpu-wheels unpack); the model is Llama-3.1-8B's shape with
random bf16 weights and the shape tokenizer (`workbench make-shape-tokenizer`, made first).
Results: <out>/summary.json (every phase's rows) and each trial's folder and log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import run_logged

ROOT = Path(__file__).resolve().parent.parent
SHAPE = ROOT / "studies" / "shapes" / "llama-3.1-8b"
TOKENIZER = Path("/tmp/llama-3.1-8b-tokenizer")
SITE = Path("/tmp/site")
#: Llama-3.1-8B's shape with random bf16 weights saved as a checkpoint (made once on the GPU)
RANDOM = Path("/tmp/random-llama-3.1-8b")
VLLM = SITE / "bin" / "vllm"
#: the compare server: `vllm serve` here, `vllm bench serve` and our client against it
PORT = 8011
BASE_URL = f"http://127.0.0.1:{PORT}"
#: requests per run at each concurrency, so a run lasts >= ~20 s at the throughputs measured before
RUN_REQUESTS = {1: 26, 64: 1408, 256: 2304}
#: the knobs every server-and-engine comparison of this file runs at (the compare server's flags too)
KNOBS = {"max_batch_size": 256, "max_num_tokens": 8192, "kv_cache_fraction": 0.9, "max_model_len": 4096}
KNOB_FLAGS = ["--max-num-seqs", "256", "--max-num-batched-tokens", "8192", "--gpu-memory-utilization", "0.9"]
#: one workload for in-process, server and hf: each point issues for 20 s, then drains
PATH_SWEEP = {"concurrency": [1, 64, 256], "duration_s": 20, "min_requests": 8}
GSM8K = {"data_path": str(ROOT / "tests" / "fixtures" / "gsm8k"), "limit": 64, "reuse": "never"}
SLO = {"ttft_ms_p95": 200, "tpot_ms_p95": 50}
SWEEP = {"concurrency": [8, 16, 32, 64, 128, 256], "requests_per_load": 4}
SPACE = {
    "max_batch_size": {"choices": [128, 256, 512, 1024]},
    "max_num_tokens": {"choices": [2048, 4096, 8192, 16384]},
    "kv_cache_fraction": {"choices": [0.8, 0.9, 0.95]},
    "quantization": {"choices": ["none", "fp8"]},
    "max_model_len": 4096,
}


def machine_facts() -> dict[str, Any]:
    """The GPU and the date, so the numbers say where they come from."""
    q = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    )
    return {"gpu": q.stdout.strip(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count()}


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(SITE), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PATH": f"{SITE / 'bin'}:{os.environ['PATH']}",
        "VLLM_USE_FLASHINFER_SAMPLER": "0",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def study(
    name: str, engine: str, space: dict[str, Any], workload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A one-trial study on the shape: random weights made at load (`dummy`), or with `accuracy` (which
    refuses `dummy`) the random checkpoint saved on disk (RANDOM), so GSM8K's mechanics run on them."""
    on_disk = "accuracy" in extra
    return {
        "name": name,
        "model": {
            "path": str(RANDOM if on_disk else SHAPE),
            "load_format": "auto" if on_disk else "dummy",
            "dtype": "bfloat16",
            "tokenizer": str(TOKENIZER),
        },
        "engine": engine,
        "engine_options": {
            "executable": str(VLLM),
            "startup_timeout_s": 400,
            "request_timeout_s": 300,
            "scrape_interval_s": 1.0,
        }
        if engine == "vllm"
        else {},
        "search_space": space,
        "workload": {
            "input_len": 128,
            "output_len": 128,
            "ignore_eos": True,
            "seed": 0,
            "warmup_requests": 16,
            **workload,
        },
        "trial": {"timeout_s": 540},
        **extra,
    }


def trial(out: Path, spec: dict[str, Any], limit: float) -> dict[str, Any] | None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(spec, indent=2))
    cmd = [
        sys.executable,
        "-m",
        "workbench.cli",
        "trial",
        str(out / "study.json"),
        "--out",
        str(out / "trial"),
    ]
    run_logged(cmd, out / "log.txt", limit, env())
    res = out / "trial" / "result.json"
    return json.loads(res.read_text()) if res.exists() else None


# ------------------------------------------------------------------------------------------ compare
def start_server(log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        str(VLLM),
        "serve",
        str(SHAPE),
        "--host",
        "127.0.0.1",
        "--port",
        str(PORT),
        "--load-format",
        "dummy",
        "--tokenizer",
        str(TOKENIZER),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        "4096",
        "--seed",
        "0",
        *KNOB_FLAGS,
    ]
    proc = subprocess.Popen(
        cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env(), start_new_session=True
    )
    import urllib.request

    t0 = time.monotonic()
    while time.monotonic() - t0 < 400:
        try:
            with urllib.request.urlopen(f"{BASE_URL}/health", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    print(f"server ready in {time.monotonic() - t0:.0f} s", flush=True)
                    return proc
        except OSError:
            time.sleep(1)
        if proc.poll() is not None:
            break
    raise SystemExit(f"the vLLM server did not start; see {log}")


def vllm_bench(out: Path, conc: int, n: int, limit: float, seed: int) -> dict[str, Any] | None:
    out.mkdir(parents=True, exist_ok=True)
    res = out / f"vllm-bench-c{conc}.json"
    cmd = [
        str(VLLM),
        "bench",
        "serve",
        "--backend",
        "vllm",
        "--base-url",
        BASE_URL,
        "--model",
        str(SHAPE),
        "--tokenizer",
        str(TOKENIZER),
        "--dataset-name",
        "random",
        "--random-input-len",
        "128",
        "--random-output-len",
        "128",
        "--ignore-eos",
        "--num-prompts",
        str(n),
        "--max-concurrency",
        str(conc),
        "--save-result",
        "--result-dir",
        str(out),
        "--result-filename",
        res.name,
        "--seed",
        str(seed),
    ]
    run_logged(cmd, out / "log.txt", limit, env())
    if not res.exists():
        return None
    d = json.loads(res.read_text())
    return {
        "output_tok_s": d["output_throughput"],
        "ttft_ms_p50": d["median_ttft_ms"],
        "tpot_ms_p50": d["median_tpot_ms"],
        "duration_s": d["duration"],
        "completed": d["completed"],
    }


def ours(out: Path, conc: int, n: int, limit: float, seed: int) -> dict[str, Any] | None:
    spec = study(
        "compare-ours",
        "openai",
        # a study needs one knob; the openai engine passes none to the server (the server's are KNOB_FLAGS)
        {"max_batch_size": KNOBS["max_batch_size"]},
        {"num_requests": n, "arrival": {"mode": "concurrency", "concurrency": conc}, "seed": seed},
    )
    spec["engine_options"] = {"url": BASE_URL, "request_timeout_s": 300}
    res = trial(out, spec, limit)
    if not res or res.get("status") != "COMPLETE":
        return None
    m = res["metrics"]
    return {k: m.get(k) for k in ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50", "duration_s")}


def compare_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    base = args.out / "compare"
    base.mkdir(parents=True, exist_ok=True)
    proc = start_server(base / "server.log")
    rows = []
    concs = {c: RUN_REQUESTS[c] for c in args.compare_conc}
    try:
        # rep -1 is a warm-up pair per concurrency (not in the ratios): the first runs at a new batch
        # size on a fresh server were 15-20 % slower than the next ones (2026-12-03 calls 1 and 2)
        for rep in range(-1 if args.warmup else 0, args.reps):
            for conc, n in concs.items():
                order = [("vllm_bench", vllm_bench), ("workbench", ours)]
                for label, fn in order if rep % 2 == 0 else order[::-1]:
                    left = until - time.monotonic()
                    if left < 45:
                        return summarize_compare(rows)
                    # a fresh prompt seed per run: with one seed for every run, a tool's prompts were still
                    # in vLLM's prefix cache from its previous run (896k KV tokens hold ~3,500 requests),
                    # so whichever tool had run last went first and fast (2026-12-03: 0.89/1.17/0.90 at 64)
                    seed = 1000 * (rep + 2) + conc + (0 if label == "vllm_bench" else 500)
                    hits0 = prefix_cache_counters()
                    got = fn(base / f"{label}-r{rep}-c{conc}", conc, n, min(left, 120), seed)
                    hits = {k: v - hits0.get(k, 0.0) for k, v in prefix_cache_counters().items()}
                    rows.append(
                        {
                            "rep": rep,
                            "concurrency": conc,
                            "tool": label,
                            "seed": seed,
                            **hits,
                            **(got or {"failed": True}),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
                    args.save("compare", summarize_compare(rows))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
    return summarize_compare(rows)


def prefix_cache_counters() -> dict[str, float]:
    """vLLM's prefix-cache queries and hits (token counters) from the compare server's /metrics."""
    import urllib.request

    from workbench.engines.server.scrape import normalize

    try:
        with urllib.request.urlopen(f"{BASE_URL}/metrics", timeout=5) as r:  # noqa: S310
            sample = normalize(r.read(), "prometheus")
    except OSError:
        return {}
    return {
        k: float(v) for k in ("prefix_cache_queries", "prefix_cache_hits") if (v := sample.get(k)) is not None
    }


def summarize_compare(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over repeats of ours / vllm bench, per concurrency and metric (pairs from the same repeat)."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for conc in RUN_REQUESTS:
        for rep in {r["rep"] for r in rows if r["rep"] >= 0}:
            pair = {
                r["tool"]: r
                for r in rows
                if r["rep"] == rep and r["concurrency"] == conc and not r.get("failed")
            }
            if len(pair) == 2:
                for k in ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50"):
                    ratios.setdefault(str(conc), {}).setdefault(k, []).append(
                        pair["workbench"][k] / pair["vllm_bench"][k]
                    )
    med = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in ratios.items()}
    return {"rows": rows, "ratios": ratios, "median_ratio": med}


# -------------------------------------------------------------------------------------------- study
def study_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    out = args.out / "study"
    out.mkdir(parents=True, exist_ok=True)
    spec = study(
        "vllm-h200-goodput",
        "vllm",
        SPACE,
        {"num_requests": 8, "sweep": SWEEP},
        slo=SLO,
        objectives=[{"metric": "slo_max_load_output_tok_s", "direction": "maximize"}],
        constraints=[{"metric": "error_rate", "max": 0}],
        sampler={"name": "tpe", "seed": 0},
        budget={"n_trials": args.n_trials},
    )
    (out / "study.json").write_text(json.dumps(spec, indent=2))
    left = until - time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "workbench.cli",
        "tune",
        str(out / "study.json"),
        "--storage",
        f"sqlite:///{args.study_db}",
        "--tracking-uri",
        "none",
        "--timeout",
        str(int(max(1, left - 150))),
    ]
    run_logged(cmd, out / "log.txt", left, env())
    return study_summary(args.study_db)


def study_summary(db: Path) -> dict[str, Any]:
    import optuna

    s = optuna.load_study(study_name="vllm-h200-goodput", storage=f"sqlite:///{db}")
    rows = []
    for t in s.trials:
        m = t.user_attrs.get("metrics") or {}
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "knobs": t.user_attrs.get("knobs") or t.params,
                "value": t.values[0] if t.values else None,
                "failure": t.user_attrs.get("failure"),
                **{
                    k: m.get(k)
                    for k in (
                        "slo_max_load",
                        "slo_max_load_output_tok_s",
                        "output_tok_s",
                        "ttft_ms_p95",
                        "tpot_ms_p95",
                        "kv_cache_tokens",
                    )
                },
            }
        )
    done = [
        r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None and r["value"] == r["value"]
    ]
    best = max(done, key=lambda r: r["value"]) if done else None
    return {"trials": rows, "best": best}


# ------------------------------------------------------------------------------------------ confirm
def confirm_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    best = (study_summary(args.study_db).get("best") or {}).get("knobs") or {}
    fixed = {k: v for k, v in best.items() if v is not None and k in SPACE}
    work = {"num_requests": 8, "sweep": SWEEP}
    plan = [
        ("defaults", "vllm", {"max_model_len": 4096}),
        ("best", "vllm", {**fixed, "max_model_len": 4096}),
    ] * 2
    plan.append(("defaults-inprocess", "vllm-inprocess", {"max_model_len": 4096}))
    rows = []
    for i, (label, engine, space) in enumerate(plan):
        left = until - time.monotonic()
        if left < 150:
            break
        res = trial(
            args.out / f"confirm-{i}-{label}",
            study(f"confirm-{label}", engine, space, work, slo=SLO),
            min(left, 300),
        )
        m = (res or {}).get("metrics") or {}
        rows.append(
            {
                "run": i,
                "label": label,
                "engine": engine,
                "knobs": space,
                "status": (res or {}).get("status"),
                **{
                    k: m.get(k)
                    for k in (
                        "output_tok_s",
                        "slo_max_load",
                        "slo_max_load_output_tok_s",
                        "ttft_ms_p95",
                        "tpot_ms_p95",
                        "kv_cache_tokens",
                    )
                },
                "points": [
                    {k: p.get(k) for k in ("load", "output_tok_s", "ttft_ms_p95", "tpot_ms_p95")}
                    for p in ((res or {}).get("bench") or {}).get("sweep", {}).get("points", [])
                ],
                "engine_config": {
                    k: v
                    for k, v in ((res or {}).get("engine_config") or {}).items()
                    if re.match(
                        r"(server\.)?(kv_cache_tokens|num_gpu_blocks|block_size|max_num_seqs|"
                        r"max_num_batched_tokens|max_model_len|auto_knobs|ready_s|load_s)",
                        k,
                    )
                },
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {"best_knobs": fixed, "rows": rows}


def ceiling_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    out = args.out / "ceiling"
    out.mkdir(parents=True, exist_ok=True)
    run_logged(
        [sys.executable, "benchmarks/client_ceiling.py", "--out", str(out)],
        out / "log.txt",
        max(30, until - time.monotonic()),
        env(),
    )
    return {"log": (out / "log.txt").read_text()[-3000:]}


# -------------------------------------------------------------------- paths, modelopt, hf (one call)
def brief(label: str, engine: str, res: dict[str, Any] | None) -> dict[str, Any]:
    """The row a comparison needs from a trial's result.json."""
    res = res or {}
    m = res.get("metrics") or {}
    timings = res.get("timings_s") or {}
    n = m.get("gsm8k_n")
    acc_s = timings.get("accuracy")
    return {
        "label": label,
        "engine": engine,
        "status": res.get("status"),
        "failure": (res.get("failure") or res.get("error") or None),
        "timings_s": timings,
        "gsm8k_n": n,
        "gsm8k_questions_per_s": n / acc_s if n and acc_s else None,
        **{
            k: m.get(k)
            for k in ("output_tok_s", "kv_cache_tokens", "gsm8k_score", "build_s", "peak_memory_gb")
        },
        "points": [
            {
                k: p.get(k)
                for k in (
                    "load",
                    "num_requests",
                    "output_tok_s",
                    "ttft_ms_p50",
                    "tpot_ms_p50",
                    "ttft_ms_p95",
                    "tpot_ms_p95",
                    "duration_s",
                )
            }
            for p in (res.get("bench") or {}).get("sweep", {}).get("points", [])
        ],
        "engine_config": {
            k: v
            for k, v in (res.get("engine_config") or {}).items()
            if re.match(
                r"(server\.)?(kv_cache_tokens|num_gpu_blocks|block_size|max_num_seqs|max_num_batched_tokens|"
                r"max_model_len|auto_knobs|ready_s|load_s|quantization|checkpoint|quant)",
                k,
            )
        },
    }


def run_plan(
    args: argparse.Namespace,
    until: float,
    phase: str,
    plan: list[tuple[str, str, dict[str, Any], dict[str, Any]]],
) -> dict[str, Any]:
    """Trials one after another while the deadline allows, each row saved as soon as it exists."""
    rows: list[dict[str, Any]] = []
    for i, (label, engine, space, extra) in enumerate(plan):
        left = until - time.monotonic()
        if left < 100:
            rows.append({"label": label, "engine": engine, "skipped": f"{left:.0f} s left"})
            continue
        work = {"num_requests": 8, "sweep": extra.pop("sweep", PATH_SWEEP)}
        options = extra.pop("options", {})
        spec = study(f"{phase}-{label}", engine, space, work, slo=SLO, **extra)
        spec["engine_options"].update(options)
        res = trial(args.out / f"{phase}-{i}-{label}", spec, min(left, 400))
        rows.append(brief(label, engine, res))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "engine_config"}), flush=True)
        args.save(phase, {"rows": rows})
    return {"rows": rows}


def random_checkpoint() -> float:
    """Save the shape with random bf16 weights (made on the GPU, in a child so its memory is freed)."""
    if (RANDOM / "config.json").exists():
        return 0.0
    code = """
import sys, torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
cfg = AutoConfig.from_pretrained(sys.argv[1])
torch.manual_seed(0)
with torch.device("cuda"):
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
m.save_pretrained(sys.argv[3])
AutoTokenizer.from_pretrained(sys.argv[2]).save_pretrained(sys.argv[3])
"""
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", code, str(SHAPE), str(TOKENIZER), str(RANDOM)], check=True, env=env()
    )
    return time.monotonic() - t0


def paths_phase(
    args: argparse.Namespace, until: float, ways: tuple[str, ...] = ("inprocess", "server")
) -> dict[str, Any]:
    print(f"random checkpoint: {random_checkpoint():.0f} s", flush=True)
    plan = {
        "inprocess": ("inprocess", "vllm-inprocess", dict(KNOBS), {}),
        "server": ("server", "vllm", dict(KNOBS), {"accuracy": dict(GSM8K)}),
    }
    return run_plan(args, until, "paths", [plan[w] for w in ways])


def server_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    """The paths phase's server trial alone (GSM8K through the server), when in-process is measured."""
    return paths_phase(args, until, ("server",))


def modelopt_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    one = {
        "sweep": {"concurrency": [64], "duration_s": 20, "min_requests": 8},
        # the committed GSM8K sample's questions as calibration text (the weights are random anyway)
        "options": {
            "calib_dataset": str(ROOT / "tests" / "fixtures" / "gsm8k" / "train.jsonl"),
            "calib_text_field": "question",
            "calib_samples": 32,
        },
    }
    return run_plan(
        args,
        until,
        "modelopt",
        [
            (q, "vllm", {**KNOBS, "quantization": q, "enforce_eager": True}, dict(one))
            for q in ("modelopt_fp8", "modelopt_nvfp4")
        ],
    )


def hf_phase(args: argparse.Namespace, until: float) -> dict[str, Any]:
    random_checkpoint()
    hf = {k: v for k, v in KNOBS.items() if k != "max_model_len"}
    return run_plan(args, until, "hf", [("hf", "hf", hf, {"accuracy": dict(GSM8K)})])


PHASES = {
    "compare": compare_phase,
    "study": study_phase,
    "confirm": confirm_phase,
    "ceiling": ceiling_phase,
    "paths": paths_phase,
    "server": server_phase,
    "modelopt": modelopt_phase,
    "hf": hf_phase,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--phases", default="compare")
    ap.add_argument("--deadline", type=float, default=560, help="seconds from start for all phases")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--compare-conc",
        type=lambda v: [int(c) for c in v.split(",")],
        default=list(RUN_REQUESTS),
        help=f"the compare phase's concurrencies, comma-separated, of {list(RUN_REQUESTS)}",
    )
    ap.add_argument("--warmup", action="store_true", help="one discarded pair per concurrency first")
    ap.add_argument("--compare-s", type=float, default=1e9, help="the most seconds the compare phase takes")
    ap.add_argument("--n-trials", type=int, default=4)
    ap.add_argument("--study-db", type=Path, default=Path("/tmp/vllm-study.db"))
    args = ap.parse_args()
    until = time.monotonic() + args.deadline
    args.out.mkdir(parents=True, exist_ok=True)
    if not TOKENIZER.exists():
        subprocess.run(
            [sys.executable, "-m", "workbench.cli", "make-shape-tokenizer", str(SHAPE), str(TOKENIZER)],
            check=True,
            env=env(),
        )
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.setdefault("machine", machine_facts())

    def save(name: str, value: dict[str, Any]) -> None:
        summary[name] = value
        summary_path.write_text(json.dumps(summary, indent=2, default=str))

    args.save = save
    for name in args.phases.split(","):
        cap = until if name != "compare" else min(until, time.monotonic() + args.compare_s)
        save(name, PHASES[name](args, cap))
    (args.out / "done").write_text("done")
    print(
        json.dumps(
            {k: v.get("median_ratio", v.get("best", v.get("rows"))) for k, v in summary.items()},
            indent=1,
            default=str,
        )[:6000]
    )


if __name__ == "__main__":
    main()
