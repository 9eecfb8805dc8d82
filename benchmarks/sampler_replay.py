"""How many trials each search strategy needs on the recorded H200 grid (offline, reproducible).

Each run is the real `workbench.study.tune` loop (baseline first, duplicates answered from earlier
trials, constraints through Optuna) on the `replay` engine, in an in-memory Optuna storage with MLflow
off; it stops as soon as a feasible trial is within --within of the grid's best feasible point. A run
counts its measurements (distinct configurations, the baseline included: what a GPU would have run)
and its Optuna trials. Samplers: TPE, NSGA-II, GP, random and grid, each over --seeds seeds.

    python benchmarks/sampler_replay.py [--study studies/h200-replay.yaml] [--seeds 20] [--within 0.03]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


def one_run(spec, sampler: str, seed: int, target: float, cap: int) -> dict:
    import optuna

    from workbench.spec import validate_spec
    from workbench.study import is_feasible, tune

    data = spec.model_dump(mode="json", exclude={"source_path"})
    data["sampler"] = {"name": sampler, "seed": seed}
    data["name"] = f"{spec.name}-{sampler}-{seed}"
    s = validate_spec(data, source_path=spec.source_path)
    storage = optuna.storages.InMemoryStorage()
    sign = 1 if spec.objectives[0].direction == "maximize" else -1

    def reached(study=None) -> bool:
        for t in storage.get_all_trials(storage.get_study_id_from_name(s.name), deepcopy=False):
            if (
                t.state == optuna.trial.TrialState.COMPLETE
                and is_feasible(t)
                and sign * t.values[0] >= sign * target
            ):
                return True
        return False

    rep = tune(s, storage=storage, tracking_uri="none", n_trials=cap, should_stop=reached)
    trials = rep.study.get_trials(deepcopy=False)
    hit = next((i for i, t in enumerate(trials) if t.state == optuna.trial.TrialState.COMPLETE and is_feasible(t)
                and sign * t.values[0] >= sign * target), None)  # fmt: skip
    upto = trials[: hit + 1] if hit is not None else trials
    measured = sum(1 for t in upto if "duplicate_of" not in t.user_attrs)
    return {
        "sampler": sampler,
        "seed": seed,
        "reached": hit is not None,
        "trials": len(upto),
        "measurements": measured,
    }


def summary(rows: list[dict], key: str) -> dict:
    vals = sorted(r[key] for r in rows if r["reached"])
    if not vals:
        return {"median": None}
    q = statistics.quantiles(vals, n=4) if len(vals) > 1 else [vals[0]] * 3
    return {"median": statistics.median(vals), "p25": q[0], "p75": q[2], "min": vals[0], "max": vals[-1]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default=str(ROOT / "studies/h200-replay.yaml"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--within", type=float, default=0.03)
    ap.add_argument("--cap", type=int, default=100, help="most finished trials per run")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/sampler_replay.json"))
    args = ap.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="sampler-replay-")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from workbench.engines.replay import grid_for
    from workbench.spec import load_spec

    spec = load_spec(args.study)
    grid = grid_for(spec.engine_options, str(spec.source_path.parent))
    best = grid.best(spec)
    assert best is not None, "no feasible point in the grid"
    metric = spec.objectives[0].metric
    sign = 1 if spec.objectives[0].direction == "maximize" else -1
    target = best["metrics"][metric] * (1 - sign * args.within)
    space = {n: v for n, v in spec.search_space.items()}
    n_space = 1
    for v in space.values():
        n_space *= len(getattr(v, "choices", [v]))
    print(f"grid {grid.path.name}: {len(grid.points)} points; search space {n_space} configurations; "
          f"best feasible {metric}={best['metrics'][metric]:.4g} at {({k: best['knobs'][k] for k in grid.axis_names})}; "
          f"target {target:.4g} (within {args.within:.0%})")  # fmt: skip
    rows = []
    t0 = time.perf_counter()
    for sampler in args.samplers.split(","):
        ts = time.perf_counter()
        for seed in range(args.seeds):
            rows.append(one_run(spec, sampler, seed, target, args.cap))
        got = [r for r in rows if r["sampler"] == sampler]
        m, t = summary(got, "measurements"), summary(got, "trials")
        print(f"{sampler:7} reached {sum(r['reached'] for r in got)}/{len(got)}; measurements median {m['median']} "
              f"(IQR {m.get('p25')}-{m.get('p75')}, range {m.get('min')}-{m.get('max')}); Optuna trials median {t['median']}; "
              f"{time.perf_counter() - ts:.1f} s")  # fmt: skip
    out = {
        "study": args.study, "grid": str(grid.path), "grid_points": len(grid.points), "space": n_space,
        "best": {k: best["knobs"][k] for k in grid.axis_names} | {metric: best["metrics"][metric]},
        "target": target, "within": args.within, "seeds": args.seeds, "cap": args.cap,
        "summary": {s: {"reached": sum(r["reached"] for r in rows if r["sampler"] == s),
                        "measurements": summary([r for r in rows if r["sampler"] == s], "measurements"),
                        "trials": summary([r for r in rows if r["sampler"] == s], "trials")}
                    for s in args.samplers.split(",")},
        "runs": rows, "seconds": time.perf_counter() - t0,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
