"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    import psutil

    from workbench.trials.orchestrator.environment import _cpu_model, git_state

    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "commit": git_state().get("commit"),
    }


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    return p


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> int:
    """Run `cmd` in the repository root, its output appended to `log`; 124 when stopped at `timeout`
    (the device scripts end every phase by a deadline and keep what it wrote)."""
    print("$", " ".join(cmd), f"(limit {timeout:.0f} s)", flush=True)
    with log.open("a") as f:
        try:
            return subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"  stopped at the deadline ({timeout:.0f} s)", flush=True)
            return 124
