"""`workbench --help` wall time (target: <= 1.0 s), median of N fresh processes."""

from __future__ import annotations

import subprocess
import sys
import time

from _common import ROOT, median, save

N = 10


def main() -> None:
    exe = str(ROOT / ".venv" / "bin" / "workbench")
    times = []
    for _ in range(N):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    out = {"runs_s": times, "median_s": median(times), "max_s": max(times), "command": f"{exe} --help"}
    print(f"workbench --help: median {out['median_s']:.3f} s, max {out['max_s']:.3f} s over {N} runs")
    print(save("cli_help", out))


if __name__ == "__main__":
    sys.exit(main())
