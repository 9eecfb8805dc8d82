"""Trials per hour with 1, 2 and 4 `workbench worker` processes on one study (tiny model, PostgreSQL).

Each configuration gets a fresh PostgreSQL database and MLflow store, creates the study with
`tune --n-trials 0`, starts N workers at once and times until the study holds TRIALS finished
trials. On a 2-core machine the workers compete for the cores, so the scaling shows what the
orchestration allows, not what GPUs would: each trial has 1 torch thread (trial.threads = 1).
Repeated REPEATS times; medians are reported.

    python benchmarks/scaleout.py [postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from _common import ROOT, save

TRIALS = 12
REPEATS = 3
WORKERS = (1, 2, 4)


def study_file(tmp: Path, name: str) -> Path:
    data = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    data["name"] = name
    data["model"]["path"] = str(ROOT / "models" / "tiny-llama")
    data["workload"].update({"num_requests": 8, "warmup_requests": 1, "output_len": 8})
    data["search_space"]["quantization"] = "none"
    data["trial"]["threads"] = 1
    data["budget"]["n_trials"] = TRIALS
    p = tmp / "study.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def one(n: int, pg: str) -> float:
    import psycopg

    db = f"wb_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        storage, tracking = f"postgresql+psycopg://{pg.split('://', 1)[1]}/{db}", f"sqlite:///{tmp}/mlflow.db"
        spec = study_file(tmp, f"scale{n}")
        wb = [sys.executable, "-m", "workbench.cli"]
        subprocess.run(
            [*wb, "tune", str(spec), "--storage", storage, "--tracking-uri", tracking, "--n-trials", "0"],
            check=True,
            capture_output=True,
        )
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*wb, "worker", f"scale{n}", "--storage", storage, "--tracking-uri", tracking],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(n)
        ]
        for p in procs:
            p.wait()
        wall = time.perf_counter() - t0
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return TRIALS / wall * 3600


def main() -> None:
    pg = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432"
    runs: dict[int, list[float]] = {n: [] for n in WORKERS}
    for r in range(REPEATS):
        for n in WORKERS:  # interleaved, so drift hits every configuration alike
            runs[n].append(one(n, pg))
            print(f"repeat {r}: {n} workers: {runs[n][-1]:.0f} trials/hour", flush=True)
    med = {n: statistics.median(v) for n, v in runs.items()}
    out = {
        "trials": TRIALS,
        "repeats": REPEATS,
        "trials_per_hour": runs,
        "median_trials_per_hour": med,
        "speedup_vs_1": {n: med[n] / med[1] for n in WORKERS},
        "efficiency": {n: med[n] / med[1] / n for n in WORKERS},
    }
    print(save("scaleout", out))
    for n in WORKERS:
        print(
            f"{n} workers: {med[n]:.0f} trials/hour, x{med[n] / med[1]:.2f}, efficiency {med[n] / med[1] / n:.0%}"
        )


if __name__ == "__main__":
    main()
