"""Orchestration overhead per trial, two checkouts side by side in one run (issue #12's figure).

`python benchmarks/overhead_before_after.py --before /path/to/old/checkout [--rounds 3]` runs
`benchmarks/orchestration_overhead.py` of the old checkout and of this one alternately (old, new, old,
new, ...), each with its own tree first on PYTHONPATH and the same interpreter, and prints the median
per-trial overhead (trial wall time minus the engine's own build + open + benchmark) of each, with the
worker's import time and process start/exit. Alternating keeps a busy machine's drift out of the ratio.
An old checkout is made with `git worktree add /tmp/before <commit>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import ROOT, machine, save

KEYS = ("overhead_s", "worker_imports_s", "worker_process_s", "mlflow_s", "trial_s")


def run_once(tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "WORKBENCH_HOME": str(tree / ".workbench")}
    subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "orchestration_overhead.py")],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = json.loads((tree / "benchmarks" / "results" / "orchestration_overhead.json").read_text())
    return {k: data["median"][k] for k in KEYS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": ROOT}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(run_once(tree))
            print(f"round {i + 1} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[name][-1].items()))
    med = {n: {k: statistics.median(r[k] for r in rs) for k in KEYS} for n, rs in runs.items()}
    print("| per trial (median of round medians) | before | after |\n|---|---|---|")
    for k in KEYS:
        print(f"| {k} | {med['before'][k]:.2f} s | {med['after'][k]:.2f} s |")
    print(
        save(
            "overhead_before_after",
            {"before": str(trees["before"]), "runs": runs, "median": med, "machine_now": machine()},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
