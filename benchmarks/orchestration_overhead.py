"""Orchestration overhead per trial (Optuna, MLflow and worker start) on the tiny model.

Runs a real study (SQLite Optuna storage, SQLite MLflow store) and, for every trial, subtracts the
engine's own work measured inside the worker (build + open + benchmark) from the trial's wall time
as Optuna recorded it. What is left is what the workbench adds: Optuna and MLflow calls, starting
the worker process and importing torch in it. Target: median <= 3 s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, save

from workbench.spec import load_spec
from workbench.study import load_study, tune

N = 10


def main() -> None:
    overrides = {"workload.num_requests": 8, "workload.warmup_requests": 1, "workload.output_len": 8}
    spec = load_spec(ROOT / "studies" / "quickstart.yaml", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        storage, tracking = f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlruns/mlflow.db"
        t0 = time.perf_counter()
        tune(spec, storage=storage, tracking_uri=tracking, n_trials=N)
        wall = time.perf_counter() - t0
        rows = []
        for t in load_study(spec.name, storage).trials:
            if "duplicate_of" in t.user_attrs or t.state.name != "COMPLETE":
                continue
            import json

            res = json.loads(Path(t.user_attrs["result_path"]).read_text())
            tim = res["timings_s"]
            engine = tim.get("build", 0) + tim.get("open", 0) + tim.get("benchmark", 0)
            total = t.duration.total_seconds()
            orch = t.user_attrs.get("orchestration_s", {})
            rows.append(
                {
                    "trial": t.number,
                    "trial_s": total,
                    "engine_s": engine,
                    "overhead_s": total - engine,
                    "worker_imports_s": tim.get("imports"),
                    "worker_process_s": tim["orchestrator_total"] - tim["worker_total"],
                    "mlflow_s": orch.get("mlflow_start", 0) + orch.get("mlflow_log", 0),
                    "optuna_s": orch.get("optuna", 0),
                }
            )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "trial"}
    for r in rows:
        print(
            f"trial {r['trial']}: {r['trial_s']:.2f} s, engine {r['engine_s']:.2f} s, overhead {r['overhead_s']:.2f} s "
            f"(worker imports {r['worker_imports_s']:.2f}, process start+exit {r['worker_process_s']:.2f}, "
            f"MLflow {r['mlflow_s']:.2f})"
        )
    print(
        "median: "
        + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
        + f"; study wall {wall:.1f} s for {N} trials"
    )
    print(
        save(
            "orchestration_overhead",
            {"rows": rows, "median": med, "study_wall_s": wall, "n_trials": N, "overrides": overrides},
        )
    )


if __name__ == "__main__":
    sys.exit(main())
