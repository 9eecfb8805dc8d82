"""The second run of a study reuses every quantized checkpoint: builds counted over two runs.

A PyTorch-backend trtllm study on the tiny model (CPU) with three quantized checkpoints in its search
space (FP8, FP8 + FP8 KV cache, INT8 SmoothQuant; the unquantized choice needs no build). Each run is a
fresh process that plans every build-knob combination of the study's search space as the trial layer
does (TrialPlan: knobs, build key with the worker environment's package versions) and asks the
artifact cache for it, building through the engine's own build (a child process running ModelOpt) on a
miss. TensorRT-LLM itself cannot run here, so the runs stop after the build step; the key, the cache
and the build are the ones a trial uses. Writes benchmarks/results/modelopt_reuse.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUANT = ["none", "fp8", "int8_sq_per_channel"]
KV = ["auto", "fp8"]


def write_study(folder: Path) -> Path:
    import yaml

    from workbench.tiny_model import make_tiny_model

    model = make_tiny_model(folder / "tiny")
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "calib.jsonl").write_text(
        "".join(
            json.dumps({"text": f"calibration sentence {i}: " + "lorem ipsum " * 20}) + "\n"
            for i in range(64)
        )
    )
    study = {
        "name": "modelopt-reuse",
        "model": {"path": str(model), "dtype": "float32"},
        "engine": "trtllm",
        "engine_options": {
            "calib_dataset": "data/calib.jsonl",
            "calib_samples": 64,
            "calib_max_seq_length": 128,
        },
        "search_space": {"quantization": {"choices": QUANT}, "kv_cache_dtype": {"choices": KV}},
        "workload": {"num_requests": 4, "input_len": 16, "output_len": 4},
        "trial": {"device": "cpu"},
    }
    p = folder / "study.yaml"
    p.write_text(yaml.safe_dump(study, sort_keys=False))
    return p


def one_run(study: Path, cache: Path) -> dict:
    """In this process: every build-knob combination of the study through the plan, key and cache."""
    from workbench.engines.base import DeviceInfo
    from workbench.engines.trtllm import TrtllmEngine
    from workbench.spec import load_spec
    from workbench.trials.cache import EngineCache
    from workbench.trials.orchestrator.planning import make_plan

    spec = load_spec(study)
    cpu = DeviceInfo("cpu", "cpu", 8 * 1024**3)
    built, reused, unbuilt, keys = 0, 0, 0, set()
    t0 = time.perf_counter()
    for q, kv in itertools.product(QUANT, KV):
        plan = make_plan(
            spec, f"{q}-{kv}", {"quantization": q, "kv_cache_dtype": kv}, cpu, cache, cache / "t"
        )
        if plan.build_key is None:
            unbuilt += 1
            continue
        keys.add(plan.build_key)
        ctx = plan.open_context()
        art = EngineCache(cache).get_or_build(
            "trtllm",
            plan.build_key,
            plan.key_material,
            lambda out, ctx=ctx, plan=plan: TrtllmEngine(ctx).build(plan.build_knobs, out),
        )
        built += not art.cache_hit
        reused += art.cache_hit
    return {
        "builds": built,
        "cache_hits": reused,
        "no_build_needed": unbuilt,
        "distinct_keys": len(keys),
        "wall_s": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("STUDY", "CACHE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "modelopt_reuse.json")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one_run(Path(a.child[0]), Path(a.child[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        study = write_study(Path(tmp))
        runs = []
        for _ in range(2):  # two separate processes: nothing survives between them but the cache
            p = subprocess.run(
                [sys.executable, __file__, "--child", str(study), str(Path(tmp) / "cache")],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    from benchmarks._common import machine

    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {"machine": machine(), "command": "python benchmarks/modelopt_reuse.py", "runs": runs}, indent=2
        )
    )


if __name__ == "__main__":
    main()
