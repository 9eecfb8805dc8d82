"""Many workers on one study: one `workbench worker` process per GPU, coordinated only by Optuna's storage.

There is no scheduler of our own. Each worker is a plain `tune` loop on the shared study: Optuna's
RDB storage hands out trials, heartbeats fail the trial of a dead worker and a copy of it is queued
for another, and the engine cache's lock makes two workers needing one build key build it once.
`launch` starts the per-GPU workers of `workbench tune --gpus`, prefixes their output, forwards
Ctrl-C and waits; `workbench worker` is the same loop joined from any machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

SQLITE_SHARED_WARNING = (
    "warning: {n} processes share the SQLite storage {url}: that works on one machine only and "
    "serialises every write; use PostgreSQL (--storage postgresql://...) for many workers or machines "
    "(docs/scale-out.md)"
)


def parse_gpus(text: str) -> list[str]:
    """`0,1,2,3` -> ['0', '1', '2', '3']; each worker sees exactly one GPU through CUDA_VISIBLE_DEVICES."""
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or any(not g.isdigit() for g in gpus):
        raise ValueError(f"--gpus takes GPU indices separated by commas, e.g. 0,1,2,3; got {text!r}")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus names a GPU twice: {text!r}")
    return gpus


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def worker_identity() -> dict[str, str]:
    """Who ran a trial: recorded on the Optuna trial and its MLflow run."""
    return {
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "worker_id": os.environ.get("WORKBENCH_WORKER_ID", ""),
    }


def worker_command(study: str, storage: str, tracking_uri: str | None, n_trials: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "workbench.cli", "worker", study, "--storage", storage]
    if tracking_uri:
        cmd += ["--tracking-uri", tracking_uri]
    if n_trials is not None:
        cmd += ["--n-trials", str(n_trials)]
    return cmd


def launch(
    study: str,
    gpus: list[str],
    storage: str,
    tracking_uri: str | None,
    n_trials: int | None,
    out: Callable[[str], None] = print,
) -> int:
    """Run one worker per GPU until the study's budget is reached; 0 when every worker ended cleanly."""
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    for g in gpus:
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": g,
            "WORKBENCH_WORKER_ID": f"gpu{g}",
            "PYTHONUNBUFFERED": "1",
        }
        p = subprocess.Popen(
            worker_command(study, storage, tracking_uri, n_trials),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C is forwarded once, by us
        )
        procs.append((g, p))

    def pump(g: str, p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            out(f"[gpu {g}] {line.rstrip()}")

    threads = [threading.Thread(target=pump, args=gp, daemon=True) for gp in procs]
    for t in threads:
        t.start()
    try:
        for _, p in procs:
            p.wait()
    except KeyboardInterrupt:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p in procs:
            p.wait()
    for t in threads:
        t.join(timeout=5)
    return max((p.returncode or 0) for _, p in procs)
