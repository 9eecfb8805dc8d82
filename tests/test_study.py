"""Studies: Optuna over real trials with MLflow tracking, on real SQLite and PostgreSQL storage.

Covers the baseline, pruning of infeasible knobs, failed trials, constraints, resume, Ctrl-C, a
`kill -9` of the tune process, and two tune processes on one study.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import ROOT, scaled, small_study
from workbench import api
from workbench.spec import validate_spec
from workbench.study import best_trials, load_study, trial_rows, tune

PG = os.environ.get("WORKBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def fast_study(tiny_model: Path, **changes) -> dict:
    """Trials of about a second of engine work."""
    base = {
        "workload.num_requests": 4,
        "workload.warmup_requests": 0,
        "workload.output_len": 4,
        "workload.input_len": {"dist": "uniform", "min": 8, "max": 16},
        "search_space.max_batch_size": {"choices": [2, 4]},
        "search_space.kv_cache_fraction": {"choices": [0.5, 0.9]},
        "search_space.max_num_tokens": {"choices": [32, 64]},
        "search_space.quantization": {"choices": ["none"]},
        "baseline": {"max_num_tokens": 64},
        "sampler": {"name": "tpe", "seed": 0},
    }
    base.update(changes)
    data = small_study(tiny_model, **{k: v for k, v in base.items() if k != "baseline"})
    data["baseline"] = base["baseline"]
    return data


def _uris(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def _runs(tracking: str, name: str) -> tuple[MlflowClient, list, list]:
    c = MlflowClient(tracking_uri=tracking)
    exp = c.get_experiment_by_name(name)
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("workbench.role") == "study"]
    trials = [r for r in runs if r.data.tags.get("workbench.role") == "trial"]
    return c, parents, trials


def _assert_reconciled(study: optuna.Study, tracking: str) -> None:
    """Every Optuna trial with a run points at a run that names it, in the matching state; no run is left RUNNING."""
    c, _, runs = _runs(tracking, study.study_name)
    by_id = {r.info.run_id: r for r in runs}
    assert not [r for r in runs if r.info.status == "RUNNING"]
    own = [t for t in study.trials if "mlflow_run_id" in t.user_attrs and "duplicate_of" not in t.user_attrs]
    assert len({t.user_attrs["mlflow_run_id"] for t in own}) == len(own)  # one run per measured trial
    assert len(own) == len(runs)
    for t in own:
        run = by_id[t.user_attrs["mlflow_run_id"]]
        assert run.data.tags["optuna_trial"] == str(t.number)
        want = {TrialState.COMPLETE: "FINISHED", TrialState.FAIL: "FAILED", TrialState.PRUNED: "KILLED"}[
            t.state
        ]
        assert run.info.status == want, (t.number, t.state, run.info.status)


def test_tune_sqlite_end_to_end(tiny_model, tmp_path, monkeypatch):
    storage, tracking = _uris(tmp_path)
    spec = validate_spec(
        fast_study(
            tiny_model,
            constraints=[{"metric": "ttft_ms_p95", "max": 60000}],
            cost={"usd_per_gpu_hour": 3.6},  # a derived metric of the registry, shown everywhere it says
        )
    )
    rep = tune(spec, storage=storage, tracking_uri=tracking, n_trials=4)
    study = load_study("t", storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    t0 = study.trials[0]
    assert t0.user_attrs["baseline"] is True
    # the engine's defaults, with the study's baseline override; max_batch_size is left to transformers
    # (null = its own default, issue #14: the hf baseline is transformers' defaults), outside the space
    assert t0.user_attrs["knobs"]["max_batch_size"] is None and t0.user_attrs["knobs"]["max_num_tokens"] == 64
    # kv_cache_fraction is auto (null) in the baseline too: not a value of the searched range, so no param
    assert t0.user_attrs["knobs"]["kv_cache_fraction"] is None
    assert t0.params == {"max_num_tokens": 64, "quantization": "none"}
    for t in study.trials:
        assert (
            t.constraints["ttft_ms_p95<=60000"] < 0
            and t.values[0] == t.user_attrs["metrics"]["output_tok_s"] > 0
        )
    assert sorted(rep.ran) == [t.number for t in study.trials]
    # the registry's derived metric: $3.6/GPU-hour x 1 GPU over the measured output throughput
    for t in study.trials:
        m = t.user_attrs["metrics"]
        assert m["usd_per_m_output_tokens"] == pytest.approx(1000.0 / m["output_tok_s"])
        assert "energy_j_per_output_token" not in m  # the CPU has no energy counter: absent, not zero
    from workbench.format import status_table
    from workbench.report import render

    assert "USD / M output tok" in status_table(trial_rows(study), ["output_tok_s"]).splitlines()[0]
    assert "usd_per_m_output_tokens" in render(study)

    c, parents, runs = _runs(tracking, "t")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["n_complete"] == 4
    by_trial = {r.data.tags["optuna_trial"]: r for r in runs}
    for t in study.trials:
        run = by_trial[str(t.number)]
        if "duplicate_of" in t.user_attrs:
            continue
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.metrics["usd_per_m_output_tokens"] == pytest.approx(
            t.user_attrs["metrics"]["usd_per_m_output_tokens"]
        )
        assert run.data.params["max_batch_size"] == str(t.user_attrs["knobs"]["max_batch_size"])
        # transformers clamps requests per step to the token budget
        k = t.user_attrs["knobs"]
        if k["max_batch_size"] is None:  # auto: what transformers resolves (if it says), within the budget
            auto = run.data.params.get("engine.max_requests_per_batch", "None")
            assert auto == "None" or 1 <= int(auto) <= k["max_num_tokens"]
        else:
            assert run.data.params["engine.max_requests_per_batch"] == str(
                min(k["max_batch_size"], k["max_num_tokens"])
            )
        assert run.data.metrics["output_tok_s"] == pytest.approx(t.values[0])
        assert run.data.metrics["feasible"] == 1.0
        assert run.data.tags["study"] == "t" and run.data.tags["engine"] == "hf"
        assert run.data.tags["pkg.transformers"] and "git_commit" in run.data.tags
        arts = {a.path for a in c.list_artifacts(run.info.run_id, "trial")}
        assert {"trial/result.json", "trial/worker.log", "trial/plan.json", "trial/bench_report.json"} <= arts
    base_run = by_trial["0"]
    assert base_run.data.metrics["output_tok_s_vs_baseline"] == pytest.approx(1.0)
    _assert_reconciled(study, tracking)
    # the best trial is one of them, and its ratio to the baseline is reported
    (best,) = best_trials(study)
    assert best.values[0] == max(t.values[0] for t in study.trials)
    rows = {r["number"]: r for r in trial_rows(study)}
    assert rows[0]["vs_baseline"] == pytest.approx(1.0)
    # export from the study's name alone (the definition is stored in the study): the best trial by default
    out = tmp_path / "export"
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "export", "t", "--storage", storage, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    exported = json.loads((out / "trial.json").read_text())
    assert exported["trial"] == best.number and exported["knobs"] == best.user_attrs["knobs"]
    assert exported["mlflow_run_id"] == best.user_attrs["mlflow_run_id"]
    cb = yaml.safe_load((out / "continuous_batching.yaml").read_text())["continuous_batching_config"]
    assert cb.get("max_requests_per_batch") == best.user_attrs["knobs"]["max_batch_size"]  # auto: not written
    assert "x the baseline's" in (out / "README.md").read_text()
    assert "usd_per_m_output_tokens" in (out / "README.md").read_text()
    # without --out (and from the notebook API) the export lands under the exports folder, not the cwd
    monkeypatch.setenv("WORKBENCH_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.chdir(tmp_path / "export")
    files = api.export("t", storage=storage)
    assert files and all(f.parent == tmp_path / "exports" / f"t-trial{best.number}" for f in files)
    assert not (tmp_path / "export" / "exports").exists()
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "export", "t", "--storage", storage, "--trial", "99"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "has no trial 99" in r.stderr


def test_infeasible_pruned_failures_recorded_and_study_goes_on(tiny_model, tmp_path):
    storage, tracking = _uris(tmp_path)
    spec = validate_spec(
        fast_study(
            tiny_model,
            **{
                "search_space.quantization": {"choices": ["none", "int4", "float8_dynamic"]},
                # 0.0005 of 10 MiB is one block of 16 tokens: requests of up to 20 tokens cannot be scheduled
                "search_space.kv_cache_fraction": {"choices": [0.0005, 0.9]},
                "sampler": {"name": "grid", "seed": 0},
                "search_space.max_batch_size": 4,
                "search_space.max_num_tokens": 64,
            },
        )
    )
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=7)
    study = load_study("t", storage)
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    pruned, failed = by_state[TrialState.PRUNED], by_state[TrialState.FAIL]
    assert len(pruned) == 4  # int4 and float8_dynamic, at both KV fractions: never built
    for t in pruned:
        assert t.user_attrs["failure_kind"] == "infeasible"
        assert (
            "needs a CUDA GPU" in t.user_attrs["failure"]
            or "compute capability >= 8.9" in t.user_attrs["failure"]
        )
    assert [t.user_attrs["failure_kind"] for t in failed] == ["engine_error"]
    assert "KV cache holds 16 tokens" in failed[0].user_attrs["failure"]
    assert len(by_state[TrialState.COMPLETE]) >= 2  # the baseline and (none, 0.9): the study went on
    _, _, runs = _runs(tracking, "t")
    fail_run = next(r for r in runs if r.data.tags["optuna_trial"] == str(failed[0].number))
    assert fail_run.info.status == "FAILED" and fail_run.data.tags["failure_kind"] == "engine_error"
    _assert_reconciled(study, tracking)


def test_duplicates_not_rerun_and_constraints_exclude(tiny_model, tmp_path):
    storage, tracking = _uris(tmp_path)
    spec = validate_spec(
        fast_study(
            tiny_model,
            **{
                "search_space.max_batch_size": 4,
                "search_space.kv_cache_fraction": 0.9,
                "search_space.max_num_tokens": 64,
                "search_space.quantization": {"choices": ["none"]},
                "baseline": {"max_batch_size": 4, "max_num_tokens": 64},
                "sampler": {"name": "random", "seed": 1},
            },
            constraints=[{"metric": "ttft_ms_p95", "max": 0.001}],
        )
    )
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=3)
    study = load_study("t", storage)
    assert [t.user_attrs.get("duplicate_of") for t in study.trials] == [None, 0, 0]
    assert study.trials[1].values == study.trials[0].values
    _, _, runs = _runs(tracking, "t")
    assert len(runs) == 1  # measured once
    assert all(t.constraints["ttft_ms_p95<=0.001"] > 0 for t in study.trials)
    assert best_trials(study) == []
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "best", "t", "--storage", storage],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 1 and "no feasible completed trial yet" in p.stdout


def test_resume_and_objective_mismatch(tiny_model, tmp_path):
    storage, tracking = _uris(tmp_path)
    spec = validate_spec(fast_study(tiny_model))
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=2)
    first = [(t.number, t.values) for t in load_study("t", storage).trials]
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=4)
    study = load_study("t", storage)
    assert [(t.number, t.values) for t in study.trials[:2]] == first
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    _, parents, _ = _runs(tracking, "t")
    assert len(parents) == 1
    _assert_reconciled(study, tracking)
    other = validate_spec(
        fast_study(tiny_model, objectives=[{"metric": "peak_memory_gb", "direction": "minimize"}])
    )
    from workbench.study import StudyMismatch

    with pytest.raises(StudyMismatch, match="already exists in this storage with objectives"):
        tune(other, storage=storage, tracking_uri=tracking, n_trials=5)


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _tune_proc(study_file: Path, storage: str, tracking: str, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "tune",
            str(study_file),
            "--storage",
            storage,
            "--tracking-uri",
            tracking,
            "--n-trials",
            str(n),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_running(storage: str, number: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            st = load_study("t", storage)
            if any(t.number == number and t.state == TrialState.RUNNING for t in st.trials):
                return
        except KeyError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"trial {number} never ran")


def test_ctrl_c_records_interrupted_and_resumes(tiny_model, tmp_path):
    storage, tracking = _uris(tmp_path)
    f = _write(tmp_path, fast_study(tiny_model, **{"workload.num_requests": 64, "workload.output_len": 16}))
    p = _tune_proc(f, storage, tracking, 3)
    _wait_running(storage, 1)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=scaled(300))
    assert p.returncode == 1 and "interrupted" in out
    study = load_study("t", storage)
    t1 = study.trials[1]
    assert t1.state == TrialState.FAIL and t1.user_attrs["failure_kind"] == "interrupted"
    _assert_reconciled(study, tracking)
    p = _tune_proc(f, storage, tracking, 3)
    out, _ = p.communicate(timeout=scaled(600))
    assert p.returncode == 0, out
    study = load_study("t", storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    _assert_reconciled(study, tracking)


def _kill9_and_resume(tiny_model, tmp_path: Path, storage: str) -> None:
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    f = _write(tmp_path, fast_study(tiny_model, **{"workload.num_requests": 64, "workload.output_len": 16}))
    p = _tune_proc(f, storage, tracking, 3)
    _wait_running(storage, 1)
    time.sleep(3)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    killed = load_study("t", storage).trials[1]
    assert killed.state == TrialState.RUNNING  # nothing could record it: the heartbeat will
    time.sleep(11)  # past the heartbeat grace period
    p = _tune_proc(f, storage, tracking, 3)
    out, _ = p.communicate(timeout=scaled(600))
    assert p.returncode == 0, out
    study = load_study("t", storage)
    assert study.trials[0].state == TrialState.COMPLETE  # finished before the kill: intact
    assert study.trials[1].state == TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retried) == 1 and retried[0].params == study.trials[1].params
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    c, _, runs = _runs(tracking, "t")
    killed_run = next(r for r in runs if r.data.tags["optuna_trial"] == "1")
    assert killed_run.info.status == "FAILED" and "heartbeat" in killed_run.data.tags["failure"]
    _assert_reconciled(study, tracking)


def test_kill_9_tune_then_resume_sqlite(tiny_model, tmp_path):
    _kill9_and_resume(tiny_model, tmp_path, f"sqlite:///{tmp_path}/optuna.db")


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test; skipped only where no server is reachable (never on CI)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"wb_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(f"{PG}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {PG}: {e}")
    conn.execute(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


def test_tune_postgresql(tiny_model, tmp_path, pg_url):
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    spec = validate_spec(fast_study(tiny_model))
    tune(spec, storage=pg_url, tracking_uri=tracking, n_trials=3)
    study = load_study("t", pg_url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    assert study.trials[0].user_attrs["baseline"]
    _assert_reconciled(study, tracking)


def test_kill_9_tune_then_resume_postgresql(tiny_model, tmp_path, pg_url):
    _kill9_and_resume(tiny_model, tmp_path, pg_url)


def test_two_tune_processes_share_a_study(tiny_model, tmp_path, pg_url):
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    f = _write(
        tmp_path,
        fast_study(
            tiny_model,
            **{
                "search_space.kv_cache_fraction": {"low": 0.3, "high": 0.9},
                "sampler": {"name": "random", "seed": None},
            },
        ),
    )
    procs = [_tune_proc(f, pg_url, tracking, 6) for _ in range(2)]
    outs = [p.communicate(timeout=scaled(900))[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n-----\n".join(o[-3000:] for o in outs)
    study = load_study("t", pg_url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert 6 <= len(complete) <= 7  # both may finish a last trial at once
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL))
    # each trial ran exactly once, in its own folder, with its own MLflow run
    dirs = [Path(t.user_attrs["result_path"]).parent.name for t in complete]
    assert len(set(dirs)) == len(dirs)
    assert sum(bool(t.user_attrs.get("baseline")) for t in study.trials) == 1
    _assert_reconciled(study, tracking)
    # both processes did work
    assert all("trial " in o for o in outs)


def _broken_figures(study: optuna.Study) -> dict:
    raise RuntimeError("this figure is broken")


def _study_artifacts(c: MlflowClient, run_id: str, dst: Path) -> tuple[set[str], list[dict]]:
    arts = {a.path for a in c.list_artifacts(run_id, "study")} | {
        a.path for a in c.list_artifacts(run_id, "figures")
    }
    best = json.loads(Path(c.download_artifacts(run_id, "study/best_trials.json", str(dst))).read_text())
    return arts, best


def test_study_run_gets_best_trials_json_and_a_failing_figure_never_fails_the_study(tiny_model, tmp_path):
    """Bug B1: best_trials.json was logged only when a figure failed, from a deleted folder, crashing `tune`."""
    from workbench.plots import study_figures

    storage, tracking = _uris(tmp_path)
    broken = validate_spec(fast_study(tiny_model, name="broken"))
    rep = tune(broken, storage=storage, tracking_uri=tracking, n_trials=1, figures=_broken_figures)
    assert not rep.interrupted and rep.ran == [0]
    c, (parent,), _ = _runs(tracking, "broken")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["figures_error"] == "RuntimeError: this figure is broken"
    (tmp_path / "a").mkdir()
    arts, best = _study_artifacts(c, parent.info.run_id, tmp_path / "a")
    assert {"study/trials.json", "study/best_trials.json"} <= arts
    (t0,) = load_study("broken", storage).trials
    assert best == [
        {
            "number": 0,
            "values": t0.values,
            "knobs": t0.user_attrs["knobs"],
            "mlflow_run_id": t0.user_attrs["mlflow_run_id"],
        }
    ]
    # on success too: the JSON files and every figure
    ok = validate_spec(fast_study(tiny_model, name="ok"))
    tune(ok, storage=storage, tracking_uri=tracking, n_trials=1, figures=study_figures)
    c, (parent,), _ = _runs(tracking, "ok")
    assert parent.info.status == "FINISHED" and "figures_error" not in parent.data.tags
    (tmp_path / "b").mkdir()
    arts, best = _study_artifacts(c, parent.info.run_id, tmp_path / "b")
    assert {"study/trials.json", "study/best_trials.json", "figures/pareto_front.html"} <= arts
    assert [b["number"] for b in best] == [0]
