"""Several worker processes on one study through real PostgreSQL: nothing run twice, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, scaled
from tests.test_study import _assert_reconciled, _runs, _write, fast_study, pg_url  # noqa: F401
from workbench.study import load_study
from workbench.study.scaleout import parse_gpus

WB = [sys.executable, "-m", "workbench.cli"]


def _start(cmd: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*WB, *cmd],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )


def _create(study_file: Path, storage: str, tracking: str) -> None:
    r = subprocess.run(
        [*WB, "tune", str(study_file), "--storage", storage, "--tracking-uri", tracking, "--n-trials", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "registered" in r.stdout, r.stdout + r.stderr


def _workers(name: str, storage: str, tracking: str, n: int) -> list[subprocess.Popen]:
    return [
        _start(
            ["worker", name, "--storage", storage, "--tracking-uri", tracking], WORKBENCH_WORKER_ID=f"w{i}"
        )
        for i in range(n)
    ]


def _finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=scaled(timeout))
        outs.append(out)
    return outs


def _finished(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def test_parse_gpus():
    assert parse_gpus("0, 1,3") == ["0", "1", "3"]
    for bad in ("", "a,b", "0,0", "0;1"):
        with pytest.raises(ValueError, match="--gpus"):
            parse_gpus(bad)


def test_three_workers_run_every_trial_exactly_once(tiny_model, tmp_path, pg_url):  # noqa: F811
    f = _write(tmp_path, fast_study(tiny_model, **{"budget.n_trials": 9}))
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    _create(f, pg_url, tracking)
    outs = _finish(_workers("t", pg_url, tracking, 3))
    study = load_study("t", pg_url)
    assert _finished(study) >= 9, outs
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len({t.number for t in study.trials}) == len(study.trials)
    by_worker = {t.user_attrs["worker"]["worker_id"] for t in study.trials if "worker" in t.user_attrs}
    assert by_worker == {"w0", "w1", "w2"}, outs  # all three took trials from the one study
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    _assert_reconciled(study, tracking)  # one MLflow run per measured trial, states matching
    _, _, runs = _runs(tracking, "t")
    assert {r.data.tags.get("worker.worker_id") for r in runs} == {"w0", "w1", "w2"}


def test_kill_9_of_one_worker_loses_nothing(tiny_model, tmp_path, pg_url):  # noqa: F811
    f = _write(tmp_path, fast_study(tiny_model, **{"budget.n_trials": 10}))
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    _create(f, pg_url, tracking)
    procs = _workers("t", pg_url, tracking, 3)
    victim = procs[0]
    deadline = time.monotonic() + 180
    killed_number = None
    while killed_number is None and time.monotonic() < deadline:  # catch w0 in the middle of a trial
        for t in load_study("t", pg_url).get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker", {}).get("worker_id") == "w0" and "mlflow_run_id" in t.user_attrs:
                killed_number = t.number
        time.sleep(0.2)
    assert killed_number is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done_before = {
        t.number: t.values for t in load_study("t", pg_url).trials if t.state == TrialState.COMPLETE
    }
    _finish(procs[1:])
    _finish(_workers("t", pg_url, tracking, 1))  # a late joiner: fails what is stale, runs what is left
    study = load_study("t", pg_url)
    assert study.trials[killed_number].state == TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed_number]
    assert len(retried) == 1 and retried[0].params == study.trials[killed_number].params
    assert retried[0].state == TrialState.COMPLETE
    assert _finished(study) >= 10
    for n, values in done_before.items():  # finished trials are intact
        assert study.trials[n].state == TrialState.COMPLETE and study.trials[n].values == values
    _, _, runs = _runs(tracking, "t")
    killed_run = next(r for r in runs if r.data.tags["optuna_trial"] == str(killed_number))
    assert killed_run.info.status == "FAILED"
    _assert_reconciled(study, tracking)


def test_two_workers_one_build_key_build_once(tiny_model, tmp_path, pg_url):  # noqa: F811
    data = fast_study(tiny_model, **{"budget.n_trials": 4, "search_space.quantization": "int8"})
    data["baseline"] = {"max_num_tokens": 64, "quantization": "int8"}
    data["trial"]["cache_dir"] = str(tmp_path / "cache")
    f = _write(tmp_path, data)
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    _create(f, pg_url, tracking)
    _finish(_workers("t", pg_url, tracking, 2))
    study = load_study("t", pg_url)
    results = [
        json.loads(Path(t.user_attrs["result_path"]).read_text())
        for t in study.trials
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    keys = {r["build"]["build_key"] for r in results}
    assert len(keys) == 1 and len(results) >= 4
    assert sum(not r["build"]["cache_hit"] for r in results) == 1  # built once, reused by both workers
    assert len(list((tmp_path / "cache" / "hf").glob("*/manifest.json"))) == 1


def test_tune_gpus_starts_one_worker_per_gpu(tiny_model, tmp_path):
    f = _write(tmp_path, fast_study(tiny_model, **{"budget.n_trials": 4}))
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    r = subprocess.run(
        [*WB, "tune", str(f), "--gpus", "0,1", "--storage", storage, "--tracking-uri", tracking],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 processes share the SQLite storage" in r.stderr
    assert "[gpu 0] worker gpu0 (CUDA_VISIBLE_DEVICES=0)" in r.stdout and "[gpu 1]" in r.stdout
    study = load_study("t", storage)
    assert _finished(study) >= 4
    seen = {t.user_attrs["worker"]["cuda_visible_devices"] for t in study.trials if "worker" in t.user_attrs}
    assert seen == {"0", "1"}


def test_sqlite_hands_each_waiting_trial_to_one_process(tmp_path):
    """pysqlite reads outside a transaction, so without BEGIN IMMEDIATE two workers popped one queued trial."""
    import collections
    import threading

    import optuna

    from workbench.study import make_storage

    url = f"sqlite:///{tmp_path}/race.db"
    study = optuna.create_study(storage=make_storage(url), study_name="r")
    for i in range(30):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    popped: collections.Counter[int] = collections.Counter()

    def pop() -> None:
        s = optuna.load_study(study_name="r", storage=make_storage(url))
        while s.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            t = s.ask()
            popped[t.number] += 1
            t.suggest_int("x", 0, 100)

    threads = [threading.Thread(target=pop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(n == 1 for n in popped.values()), popped
    assert set(range(30)) <= set(popped)
