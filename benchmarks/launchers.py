"""The same trial through the default launcher and through a second environment's interpreter.

Runs one hf trial on a tiny random model (CPU) alternately through `LocalLauncher` (the workbench's
interpreter) and `PythonLauncher` (a second virtual environment holding only pydantic, PyYAML, torch,
transformers and torchao, made like the test suite makes it), N times each, and prints the median
metrics and the launcher's own cost: the trial's wall time outside the worker's measurement
(orchestrator_total - worker_total: process start, interpreter and imports, result reading).

    .venv/bin/python benchmarks/launchers.py [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METRICS = ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50", "peak_memory_gb", "kv_cache_tokens")


def _study(model: Path, python: str | None) -> object:
    from tests.conftest import small_study
    from workbench.spec import validate_spec

    data = small_study(model, **{"workload.num_requests": 8})
    if python:
        data["runtime"] = {"python": python}
    return validate_spec(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-launchers-"))
    os.environ["WORKBENCH_HOME"] = str(tmp / "home")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.test_launchers import make_second_env
    from workbench.tiny_model import make_tiny_model
    from workbench.trials.orchestrator.run import run_trial

    model = make_tiny_model(tmp / "tiny-llama")
    second = make_second_env(tmp / "second-venv")
    knobs = {"max_batch_size": 4, "quantization": "none", "kv_cache_fraction": 0.5}
    rows: dict[str, list] = {"default (this interpreter)": [], "second environment": []}
    for i in range(args.runs):
        for label, py in (("default (this interpreter)", None), ("second environment", str(second))):
            res = run_trial(_study(model, py), knobs, trial_id=f"{i}-{py is not None}")
            assert res.status == "COMPLETE", res.failure
            rows[label].append(res)
    print(
        f"machine: {platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; date: {_dt.date.today()}; command: .venv/bin/python "
        f"benchmarks/launchers.py --runs {args.runs}\n"
    )
    head = ["launcher", *METRICS, "trial wall s", "outside worker s", "worker imports s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, results in rows.items():
        med = [statistics.median(r.metrics[m] for r in results) for m in METRICS]
        wall = statistics.median(r.timings_s["orchestrator_total"] for r in results)
        outside = statistics.median(
            r.timings_s["orchestrator_total"] - r.timings_s["worker_total"] for r in results
        )
        imports = statistics.median(r.timings_s["imports"] for r in results)
        cells = [f"{v:.4g}" for v in (*med, wall, outside, imports)]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(
        f"\nmedians of {args.runs} alternating runs each; tiny random-weight Llama, 8 requests, CPU, 1 thread"
    )


if __name__ == "__main__":
    main()
