"""The H200 runs of issue #8, as one resumable command for the device machine.

Within a deadline (one device call is at most 10 minutes) it
  1. runs (or resumes) the study studies/h200-llama-3.1-8b.yaml through `workbench tune`, with
     Optuna in SQLite and MLflow off (the device reaches no MLflow; `workbench import` logs it here),
  2. records (or resumes) the grid of studies/h200-grid.yaml through `workbench grid --reuse-model`,
  3. writes the machine's facts (nvidia-smi, packages) beside them.
Everything goes to --out; pass the last call's files back with --state to resume.

    python3 benchmarks/h200.py --out $OUT --state .device/state --deadline 560
    python3 benchmarks/h200.py --out /tmp/h --small        # CPU smoke test with the tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import run_logged

ROOT = Path(__file__).resolve().parent.parent

STUDY, GRID = ROOT / "studies/h200-llama-3.1-8b.yaml", ROOT / "studies/h200-grid.yaml"
SMALL = [  # the same commands on the tiny model and the CPU, for a smoke test of this script
    "--set",
    "model.path=../models/tiny-llama",
    "--set",
    "model.dtype=float32",
    "--set",
    "model.tokenizer=null",
    "--set",
    "workload.num_requests=8",
    "--set",
    "workload.warmup_requests=1",
    "--set",
    "workload.output_len=8",
    "--set",
    "workload.input_len=32",
    "--set",
    "trial.cpu_kv_budget_gb=0.05",
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--state", default=None, help="the files of the previous call, to resume from")
    ap.add_argument("--deadline", type=float, default=560, help="seconds this call may take")
    ap.add_argument(
        "--study-until", type=float, default=330, help="no new study trial after this many seconds"
    )
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--skip-study", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.state and Path(args.state).is_dir():
        for p in Path(args.state).iterdir():
            dst = out / p.name
            if not dst.exists():
                shutil.copytree(p, dst) if p.is_dir() else shutil.copy2(p, dst)
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(out / "home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "WORKBENCH_FIGURE_PNG": "0",
    }
    wb = [sys.executable, "-m", "workbench.cli"]
    extra = SMALL if args.small else []
    log = out / "h200.log"
    if not (ROOT / "models/tiny-llama/tokenizer.json").exists():
        run_logged([*wb, "make-tiny-model", "models/tiny-llama"], log, 120, env)
    facts = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": sys.version}
    try:
        facts["nvidia_smi"] = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,clocks.max.memory,clocks.max.sm",
                "--format=csv",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        facts["nvidia_smi"] = str(e)
    if not args.skip_study:
        left = args.study_until - (time.monotonic() - t0)
        rc = run_logged(
            [
                *wb,
                "tune",
                str(STUDY),
                "--storage",
                f"sqlite:///{out}/h200-study.db",
                "--tracking-uri",
                "none",
                "--timeout",
                str(max(left, 1)),
                *extra,
            ],
            log,
            args.deadline - (time.monotonic() - t0) - 30,
            env,
        )
        facts["study_rc"] = rc
    left = args.deadline - (time.monotonic() - t0)
    if left > 90:
        rc = run_logged(
            [
                *wb,
                "grid",
                str(GRID),
                "--out",
                str(out / "grid.jsonl"),
                "--reuse-model",
                "--time-budget",
                str(left - 75),
                *extra,
            ],
            log,
            left - 10,
            env,
        )
        facts["grid_rc"] = rc
    if (out / "home").is_dir():  # trial folders are deeper than the device tool brings back: one archive
        subprocess.run(["tar", "czf", str(out / "home.tgz"), "-C", str(out), "home"], check=False)
        shutil.rmtree(out / "home", ignore_errors=True)
    facts["seconds"] = time.monotonic() - t0
    (out / "facts.json").write_text(json.dumps(facts, indent=2))
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
