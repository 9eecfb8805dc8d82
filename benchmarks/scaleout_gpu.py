"""Trials per hour with 1 and 2 GPU worker processes on the `hf` engine (run on the 2 x H200 machine).

The device machine has no Optuna, MLflow or PostgreSQL, so this measures the part that scales with
GPUs: the same list of trial configurations run through `workbench.trials.orchestrator.run.run_trial` (the real
worker subprocess: build, open, benchmark, NVML memory, result JSON), by one process per GPU
(CUDA_VISIBLE_DEVICES), the list dealt out round-robin. Orchestration through the shared study adds
about 2 s per trial on top (docs/benchmarks.md). Model: Llama-3.1-8B's architecture with random
bf16 weights (`load_format: dummy`; throughput and memory do not depend on weight values).

    python benchmarks/scaleout_gpu.py --gpus 0,1 --trials 12 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
}


def model_dir(out: Path, small: bool) -> Path:
    """config.json of the shape + the project's tiny tokenizer: no weights (load_format dummy)."""
    from workbench.tiny_model import make_tiny_model

    d = out / "model"
    if (d / "config.json").exists():
        return d
    tiny = make_tiny_model(out / "tiny")
    d.mkdir(parents=True, exist_ok=True)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            (d / f.name).write_bytes(f.read_bytes())
    cfg = dict(LLAMA_31_8B)
    if small:  # a CPU smoke test of this script
        cfg.update(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            vocab_size=1024,
            torch_dtype="float32",
        )
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def configs(n: int) -> list[dict]:
    rng = random.Random(0)
    return [
        {
            "max_batch_size": rng.choice([16, 32, 64, 128]),
            "max_num_tokens": rng.choice([512, 1024, 2048]),
            "kv_cache_fraction": round(rng.uniform(0.3, 0.8), 2),
        }
        for _ in range(n)
    ]


def stream(args: argparse.Namespace) -> None:
    """One GPU's share: configurations i, i+n, i+2n, ... in one process."""
    from workbench.spec import validate_spec
    from workbench.trials.orchestrator.run import run_trial

    out = Path(args.out)
    small = args.small
    spec = validate_spec(
        {
            "name": "scaleout-gpu",
            "model": {
                "path": str(model_dir(out, small)),
                "dtype": "float32" if small else "bfloat16",
                "load_format": "dummy",
            },
            "engine": "hf",
            "search_space": {"max_batch_size": {"choices": [16, 32, 64, 128]}},
            "workload": {
                "num_requests": 8 if small else 64,
                "warmup_requests": 2,
                "input_len": 32 if small else 512,
                "output_len": 8 if small else 128,
            },
            "trial": {"timeout_s": 600, "device": "cpu" if small else "cuda", "cpu_kv_budget_gb": 0.05},
        }
    )
    mine = configs(args.trials)[args.index :: args.of]
    rows = []
    for i, k in enumerate(mine):
        t0 = time.perf_counter()
        res = run_trial(spec, k, trial_id=f"gpu{os.environ.get('CUDA_VISIBLE_DEVICES', 'x')}-{i}")
        rows.append(
            {
                "knobs": k,
                "status": res.status,
                "wall_s": time.perf_counter() - t0,
                "output_tok_s": res.metrics.get("output_tok_s"),
                "device": res.environment.get("device", {}).get("name"),
                "failure": res.failure.message if res.failure else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    (out / f"stream{args.index}of{args.of}.json").write_text(json.dumps(rows, indent=1))


def drive(args: argparse.Namespace) -> None:
    gpus = [g for g in args.gpus.split(",") if g]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir(out, args.small)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--stream",
                "--index",
                str(i),
                "--of",
                str(len(gpus)),
                "--trials",
                str(args.trials),
                "--out",
                str(out),
                *(["--small"] if args.small else []),
            ],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": g, "WORKBENCH_HOME": str(out / f"home{g}")},
        )
        for i, g in enumerate(gpus)
    ]
    for p in procs:
        p.wait()
    wall = time.perf_counter() - t0
    rows = [
        r for i in range(len(gpus)) for r in json.loads((out / f"stream{i}of{len(gpus)}.json").read_text())
    ]
    summary = {
        "gpus": gpus,
        "trials": len(rows),
        "complete": sum(r["status"] == "COMPLETE" for r in rows),
        "wall_s": wall,
        "trials_per_hour": len(rows) / wall * 3600,
        "median_trial_s": sorted(r["wall_s"] for r in rows)[len(rows) // 2],
        "devices": sorted({r["device"] for r in rows if r["device"]}),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (out / f"summary_{len(gpus)}gpu.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpus", default="0")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--of", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="a tiny shape on CPU, to check the script")
    a = ap.parse_args()
    stream(a) if a.stream else drive(a)
