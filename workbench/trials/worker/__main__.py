"""The trial worker's entry point: `python -m workbench.trials.worker PLAN.json RESULT.json`.

Started by a launcher in the engine's own environment (this interpreter, another one, or a
container). It reads the plan, measures (`workbench.trials.worker.measure`), writes the result; memory is
sampled from outside, so it only writes phase marks next to the result. If the process dies (killed,
out of memory), the executor records that instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m workbench.trials.worker PLAN.json RESULT.json", file=sys.stderr)
        return 2
    from workbench.trials.plan import TrialPlan
    from workbench.trials.worker.measure import measure
    from workbench.trials.worker.phase_marks import MARKS_FILE, PhaseMarks

    plan = TrialPlan.model_validate_json(Path(argv[0]).read_text())
    deadline_env = os.environ.get("WORKBENCH_DEADLINE_S")
    deadline = time.perf_counter() + float(deadline_env) if deadline_env else None
    result = measure(plan, deadline, PhaseMarks(Path(argv[1]).parent / MARKS_FILE))
    result.write(argv[1])
    failure = f" ({result.failure.kind}: {result.failure.message})" if result.failure else ""
    print(f"worker: {result.status}{failure}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the result is on disk: skip the interpreter's teardown of torch and friends (about a second)
    os._exit(code)
