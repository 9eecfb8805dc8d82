"""status, best, dashboard and ui on a finished study; the web UIs answer on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, scaled
from tests.test_study import fast_study
from workbench.spec import validate_spec
from workbench.study import tune

WB = [sys.executable, "-m", "workbench.cli"]


@pytest.fixture(scope="module")
def finished(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect")
    storage, tracking = f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlruns/mlflow.db"
    spec = validate_spec(
        fast_study(
            tiny_model,
            **{
                "search_space.quantization": {"choices": ["none", "int4"]},
                "sampler": {"name": "grid", "seed": 0},
                "search_space.max_batch_size": 4,
                "search_space.kv_cache_fraction": 0.9,
                "search_space.max_num_tokens": {"choices": [32, 64]},
            },
            constraints=[{"metric": "peak_memory_gb", "max": 8}],
        )
    )
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=5)
    return storage, tracking


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_table(finished):
    storage, _ = finished
    p = subprocess.run([*WB, "status", "t", "--storage", storage], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = lines[0].split()
    assert head[:2] == ["#", "state"]
    assert {"max_batch_size", "kv_cache_fraction", "max_num_tokens", "quantization", "output_tok_s"} <= set(
        head
    )
    assert "baseline" in lines[1] and "COMPLETE" in lines[1]
    assert any("PRUNED" in ln and "infeasible: int4" in ln for ln in lines)
    rows = json.loads(
        subprocess.run(
            [*WB, "status", "t", "--storage", storage, "--json"], capture_output=True, text=True, cwd=ROOT
        ).stdout
    )
    assert {r["state"] for r in rows} == {"COMPLETE", "PRUNED"}


def test_best(finished):
    storage, _ = finished
    p = subprocess.run([*WB, "best", "t", "--storage", storage], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0 and p.stdout.startswith("best configuration:")
    assert "x the baseline's output_tok_s" in p.stdout and "quantization=none" in p.stdout
    p = subprocess.run([*WB, "best", "nope", "--storage", storage], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "no study named 'nope'" in p.stderr


def _serve(args: list[str], ready: str, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    line = proc.stdout.readline()
    assert ready in line, line
    url = line.split(": ", 1)[1].split()[0]
    return proc, url


def _get(url: str, timeout: float = 180, data: bytes | None = None) -> bytes:
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_dashboard_serves_the_study_on_loopback(finished):
    storage, _ = finished
    port = _free_port()
    proc, url = _serve([*WB, "dashboard", "t", "--storage", storage, "--port", str(port)], "optuna-dashboard")
    try:
        assert url == f"http://127.0.0.1:{port}/dashboard/studies/1"
        studies = json.loads(_get(f"http://127.0.0.1:{port}/api/studies"))["study_summaries"]
        assert [s["study_name"] for s in studies] == ["t"]
    finally:
        _stop(proc)


def test_mlflow_ui_opens_the_study_runs(finished):
    _, tracking = finished
    port = _free_port()
    proc, url = _serve([*WB, "ui", "t", "--tracking-uri", tracking, "--port", str(port)], "MLflow UI")
    try:
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/") and url.endswith("/runs")
        exp_id = url.split("/experiments/")[1].split("/")[0]
        body = json.dumps({"experiment_ids": [exp_id], "max_results": 100}).encode()
        runs = json.loads(_get(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", data=body))["runs"]
        roles = sorted(
            next(t["value"] for t in r["data"]["tags"] if t["key"] == "workbench.role") for r in runs
        )
        from workbench.study import load_study

        study = load_study("t", finished[0])
        measured = [t for t in study.trials if "duplicate_of" not in t.user_attrs]
        assert roles.count("study") == 1 and roles.count("trial") == len(measured) == 4
    finally:
        _stop(proc)


def test_ui_unknown_study_is_a_usage_error(finished):
    _, tracking = finished
    p = subprocess.run(
        [*WB, "ui", "nope", "--tracking-uri", tracking], capture_output=True, text=True, cwd=ROOT
    )
    assert p.returncode == 2 and "no MLflow experiment named 'nope'" in p.stderr
    assert Path(ROOT).exists()
