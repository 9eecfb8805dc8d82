"""Resume is exact (issue 15): the baseline, the sampler, clean retries, causes, both stores agreeing.

Real Optuna SQLite storage and a real MLflow store throughout; the replay study
(studies/h200-replay.yaml, trials answered from the grid recorded on the H200) keeps trials at
milliseconds, and the kill and Ctrl-C paths run `workbench tune` as a real process on the tiny model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import ROOT
from tests.test_study import _assert_reconciled, _runs, _wait_running, _write, fast_study
from workbench.spec import load_spec, validate_spec
from workbench.study import load_study, make_storage, tune
from workbench.study.constraints import constraint_values
from workbench.study.storage import open_study

REPLAY = ROOT / "studies" / "h200-replay.yaml"


def _replay(**changes):
    spec = load_spec(REPLAY)
    return spec.model_copy(update=changes) if changes else spec


def _uris(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def _distinct(study: optuna.Study) -> int:
    own = [
        t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs.get("duplicate_of") is None
    ]
    keys = [repr(sorted(t.user_attrs["knobs"].items())) for t in own]
    assert len(keys) == len(set(keys)), "a configuration was measured twice"
    return len(keys)


def test_interrupted_baseline_is_queued_again(tmp_path):
    """Before: any trial carrying the baseline attr (FAIL too) stopped the enqueue; no baseline ever ran."""
    storage, tracking = _uris(tmp_path)
    spec = _replay()
    study = open_study(spec, storage)
    from workbench.study.space import distributions
    from workbench.study.tune import enqueue_baseline

    enqueue_baseline(study, spec, distributions(spec))
    t = study.ask()  # the baseline, interrupted the way Ctrl-C leaves it
    assert t.user_attrs["baseline"] is True
    t.set_user_attr("failure_kind", "interrupted")
    t.set_user_attr("failure", "interrupted by the user (Ctrl-C)")
    study.tell(t, state=TrialState.FAIL)
    rep = tune(spec, storage=storage, tracking_uri=tracking, n_trials=3)
    study = load_study(spec.name, storage)
    bases = [t for t in study.trials if t.user_attrs.get("baseline")]
    assert [b.state for b in bases] == [TrialState.FAIL, TrialState.COMPLETE]
    assert any("baseline did not complete" in n for n in rep.notes)
    ratios = [r.data.metrics.get("output_tok_s_vs_baseline") for r in _runs(tracking, spec.name)[2]]
    assert all(r is not None for r in ratios)  # every trial reads as a ratio to the baseline


def test_a_gate_never_passes_without_a_baseline():
    """Before: a missing baseline gave 0.0 (feasible), so `max_drop_from_baseline` passed everything."""
    spec = _replay(constraints=[])
    spec = validate_spec(
        {
            **spec.model_dump(mode="json", exclude={"source_path"}),
            "constraints": [{"metric": "output_tok_s", "max_drop_from_baseline": 10}],
        },
        source_path=REPLAY,
    )
    assert constraint_values(spec, {"output_tok_s": 1.0}, None) == [1.0]  # violated
    assert constraint_values(spec, {"output_tok_s": 1.0}, {"output_tok_s": 100.0}) == [89.0]
    assert constraint_values(spec, {"output_tok_s": 95.0}, {"output_tok_s": 100.0}) == [-5.0]
    from workbench.study.constraints import without_baseline

    assert "counted as violated" in without_baseline(spec, {"output_tok_s": 1.0}, None)


def test_resume_continues_the_sampler_and_budget_counts_distinct_configurations(tmp_path):
    """Before: each resume rebuilt TPESampler(seed=0), replayed its start-up knobs as copies, and the
    copies counted toward n_trials (fewer distinct configurations than the budget)."""
    storage, tracking = _uris(tmp_path)
    spec = _replay()
    for n in (4, 8, 12, 16):  # four restarts
        tune(spec, storage=storage, tracking_uri=tracking, n_trials=n)
    study = load_study(spec.name, storage)
    assert _distinct(study) == 16
    # no restart replayed the start-up phase: trials 4.. are not copies of trials 0..3
    copies = [
        t.user_attrs["duplicate_of"] for t in study.trials if t.user_attrs.get("duplicate_of") is not None
    ]
    assert len(copies) <= len(study.trials) - 16


def test_a_retry_starts_with_clean_attrs_and_a_cause(tmp_path):
    """Before: Optuna's retry copied every user attr: the dead trial's MLflow link and worker pid."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    storage = make_storage(url, heartbeat_s=1, grace_s=1)
    spec = _replay()
    study = open_study(spec, storage)
    t = study.ask()
    t.suggest_categorical("quantization", ["none", "int4"])
    for k, v in {
        "knobs": {"quantization": "none"},
        "mlflow_run_id": "dead",
        "worker": {"pid": "1"},
        "failure_kind": "crash",
        "failure": "x",
    }.items():
        t.set_user_attr(k, v)
    storage.record_heartbeat(t._trial_id)
    time.sleep(2.5)  # past the grace period: stale
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    (retry,) = [r for r in trials if r.state == TrialState.WAITING]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == trials[0].params
    assert "mlflow_run_id" not in retry.user_attrs and "worker" not in retry.user_attrs
    assert retry.user_attrs["knobs"] == {"quantization": "none"}
    assert retry.user_attrs["failure_kind"] == "crash" and "heartbeat" in retry.user_attrs["failure"]


def test_mlflow_agrees_with_optuna_both_ways(tmp_path):
    """Before: only RUNNING runs of FAIL trials were fixed; a FINISHED run of a FAIL trial (killed between
    MLflow's end and Optuna's COMPLETE) and a run no trial points at stayed, counted as measurements."""
    storage, tracking = _uris(tmp_path)
    spec = _replay()
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=1)
    study = load_study(spec.name, storage)
    c, (parent,), _ = _runs(tracking, spec.name)
    exp = c.get_experiment_by_name(spec.name).experiment_id
    tags = {"workbench.role": "trial", "mlflow.parentRunId": parent.info.run_id}
    t = study.ask()  # killed after its run FINISHED, before Optuna's COMPLETE
    finished = c.create_run(exp, tags={**tags, "optuna_trial": str(t.number)}).info.run_id
    c.set_terminated(finished, "FINISHED")
    t.set_user_attr("mlflow_run_id", finished)
    t.set_user_attr("failure_kind", "crash")
    t.set_user_attr("failure", "the process running this trial stopped (heartbeat)")
    study.tell(t, state=TrialState.FAIL)
    t = study.ask()  # killed between creating its run and linking it
    orphan = c.create_run(exp, tags={**tags, "optuna_trial": str(t.number)}).info.run_id
    study.tell(t, state=TrialState.FAIL)
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=2)
    assert c.get_run(finished).info.status == "FAILED"
    assert c.get_run(finished).data.tags["failure_kind"] == "crash"
    assert c.get_run(orphan).info.status == "FAILED" and c.get_run(orphan).info.lifecycle_stage == "deleted"
    _assert_reconciled(load_study(spec.name, storage), tracking)


def test_mlflow_experiment_opens_in_the_model_training_view(tmp_path):
    from workbench.tracking.view import EXPERIMENT_KIND_TAG, MODEL_TRAINING, SHARED_VIEW_TAG, VIEW_KEY

    storage, tracking = _uris(tmp_path)
    spec = _replay()
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=2)
    c = MlflowClient(tracking_uri=tracking)
    exp = c.get_experiment_by_name(spec.name)
    assert exp.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    import json

    view = json.loads(exp.tags[SHARED_VIEW_TAG + VIEW_KEY])
    _, (parent,), runs = _runs(tracking, spec.name)
    assert view["runsExpanded"] == {parent.info.run_id: True}
    assert "metrics.`output_tok_s`" in view["selectedColumns"]
    assert "metrics.`peak_memory_gb`" in view["selectedColumns"]  # the constraint
    assert "params.`max_batch_size`" in view["selectedColumns"]
    names = sorted(r.info.run_name for r in runs)
    study = load_study(spec.name, storage)
    k0 = study.trials[0].user_attrs["knobs"]
    assert names[0] == (
        f"#0000 {k0['quantization']} bs={k0['max_batch_size']} tok={k0['max_num_tokens']} "
        f"kv={k0['kv_cache_fraction']:g} (baseline)"
    )
    assert names[1].startswith("#0001 ")


# ----------------------------------------------------------------------------- real processes
def _tune(study_file: Path, storage: str, tracking: str, n: int, pre: str = "") -> subprocess.Popen:
    """`workbench tune` in its own process; `pre` runs first in that interpreter (a test's hook)."""
    code = f"{pre}\nimport sys\nfrom workbench.cli import main\nsys.exit(main())"
    argv = ["tune", str(study_file), "--storage", storage, "--tracking-uri", tracking, "--n-trials", str(n)]
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


#: a slow at-fork handler: before the fix, every worker start ran it (preexec_fn), and a Ctrl-C landing
#: there was swallowed; the marker file says the window is open
SLOW_FORK = (
    "import os, time, pathlib\n"
    "def _slow():\n"
    "    pathlib.Path(os.environ['FORK_MARK']).touch()\n"
    "    time.sleep(1.5)\n"
    "os.register_at_fork(before=_slow)\n"
)


def test_ctrl_c_during_worker_start_is_honoured_and_closes_the_study_run(tiny_model, tmp_path):
    storage, tracking = _uris(tmp_path)
    f = _write(tmp_path, fast_study(tiny_model, **{"workload.num_requests": 32, "workload.output_len": 16}))
    mark = tmp_path / "forking"
    os.environ["FORK_MARK"] = str(mark)
    try:
        p = _tune(f, storage, tracking, 3, pre=SLOW_FORK)
        _wait_running(storage, 0)
        deadline = time.monotonic() + 3  # after the fix no at-fork handler runs: then during the trial
        while not mark.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)  # in the at-fork window if it exists, else during the trial
        out, _ = p.communicate(timeout=120)
    finally:
        del os.environ["FORK_MARK"]
    assert p.returncode == 1 and "interrupted" in out, out[-3000:]
    study = load_study("t", storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) < 3  # it stopped at once
    (t0,) = study.get_trials(states=(TrialState.FAIL,))
    assert t0.user_attrs["failure_kind"] == "interrupted"
    _, (parent,), _ = _runs(tracking, "t")
    assert parent.info.status == "KILLED"
    _assert_reconciled(study, tracking)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ctrl_c_at_random_moments(tiny_model, tmp_path, seed):
    import random

    storage, tracking = _uris(tmp_path)
    f = _write(tmp_path, fast_study(tiny_model))
    p = _tune(f, storage, tracking, 4)
    _wait_running(storage, 0)
    time.sleep(random.Random(seed).uniform(0, 6))
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode in (0, 1), out[-3000:]  # 0: it had finished before the signal
    study = load_study("t", storage)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for t in study.get_trials(states=(TrialState.FAIL,)):
        assert t.user_attrs["failure_kind"] == "interrupted" and t.user_attrs["failure"]
    _, (parent,), _ = _runs(tracking, "t")
    assert parent.info.status == ("KILLED" if p.returncode == 1 else "FINISHED")
    _assert_reconciled(study, tracking)


def test_a_trial_killed_with_tune_records_its_cause(tiny_model, tmp_path):
    """Before: a trial failed by the heartbeat after kill -9 had no failure_kind or failure in Optuna."""
    storage, tracking = _uris(tmp_path)
    f = _write(tmp_path, fast_study(tiny_model, **{"workload.num_requests": 64, "workload.output_len": 16}))
    p = _tune(f, storage, tracking, 2)
    _wait_running(storage, 0)
    time.sleep(2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(11)  # past the heartbeat grace period
    p = _tune(f, storage, tracking, 2)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]
    study = load_study("t", storage)
    killed = study.trials[0]
    assert killed.state == TrialState.FAIL and killed.user_attrs["baseline"]
    assert killed.user_attrs["failure_kind"] == "crash" and "heartbeat" in killed.user_attrs["failure"]
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["baseline"]
    assert retry.user_attrs["mlflow_run_id"] != killed.user_attrs.get("mlflow_run_id")
    assert retry.user_attrs["failure_kind"] is None  # the provisional cause is cleared on success
    _assert_reconciled(study, tracking)
