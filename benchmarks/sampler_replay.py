"""How many trials each search strategy needs on the recorded H200 grid (offline, reproducible).

The runs are `workbench.strategies.compare`: the real `tune` loop on the `replay` engine, stopped at
the first feasible trial within --within of the grid's best feasible point; TPE, NSGA-II, GP, random
and grid, each over --seeds seeds. Prints the table of docs/benchmarks.md and writes every run as JSON.

    python benchmarks/sampler_replay.py [--study studies/h200-replay.yaml] [--seeds 20] [--within 0.03]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default=str(ROOT / "studies/h200-replay.yaml"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--within", type=float, default=0.03)
    ap.add_argument("--cap", type=int, default=100, help="most finished trials per run")
    ap.add_argument("--samplers", default="tpe,nsga2,gp,random,grid")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/sampler_replay.json"))
    args = ap.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="sampler-replay-")
    from workbench import strategies
    from workbench.spec import load_spec

    spec = load_spec(args.study)
    best, goal = strategies.target(spec, args.within)
    metric = spec.objectives[0].metric
    print(f"best feasible {metric}={best['metrics'][metric]:.4g} at {best['knobs']}; goal {goal:.4g}")
    t0 = time.perf_counter()
    runs = strategies.compare(spec, args.samplers.split(","), args.seeds, args.within, args.cap)
    seconds = time.perf_counter() - t0
    meas, trials = strategies.summary(runs, "measurements"), strategies.summary(runs, "trials")
    print("| sampler | reached | measurements: median | IQR | range | Optuna trials: median (IQR) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s, m in meas.items():
        t = trials[s]
        print(
            f"| {s} | {m['reached']}/{m['runs']} | {m.get('median')} | {m.get('p25')}–{m.get('p75')} | "
            f"{m.get('min')}–{m.get('max')} | {t.get('median')} ({t.get('p25')}–{t.get('p75')}) |"
        )
    out = {
        "study": args.study,
        "best": best,
        "goal": goal,
        "within": args.within,
        "seeds": args.seeds,
        "cap": args.cap,
        "summary": {"measurements": meas, "trials": trials},
        "runs": runs.to_dict(orient="records"),
        "seconds": seconds,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {args.out} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
