"""Hopeless trials stopped early (issue #21 item 2): the study's Optuna pruner sees each sweep load as
the trial runs, a pruned trial's server stops at once, and the trial is PRUNED with its reason and what
it measured, in Optuna and MLflow; pruner options are checked against Optuna's own signatures."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import small_study
from workbench.spec import StudySpec, validate_spec
from workbench.study import load_study, tune


def _study(tiny_model, marker: str, pruner: dict, **more):
    trivial = (
        f"{sys.executable} -m workbench.engines.server.trivial --port {{port}} --delay-ms 5 --mode ok "
        f"--tag {marker}"
    )
    data = small_study(tiny_model, engine="openai")
    data["engine_options"] = {"command": trivial}
    data["search_space"] = {"max_batch_size": {"choices": [4, 8]}}
    data["baseline"] = {}
    data["workload"] = {
        "num_requests": 8,
        "warmup_requests": 0,
        "input_len": 4,
        "output_len": 4,
        "sweep": {"concurrency": [1, 2, 4, 8], "requests_per_load": 2, "min_requests": 4},
    }
    data["objectives"] = [{"metric": "output_tok_s", "direction": "maximize"}]
    data["pruner"] = pruner
    data.update(more)
    return data


def _servers(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", "--", marker], capture_output=True, text=True).stdout.split()
    return out


def test_a_pruned_trial_stops_its_server_and_is_recorded_with_its_reason(tiny_model, tmp_path):
    marker = f"wb-prune-{uuid.uuid4().hex[:8]}"
    # the threshold pruner is deterministic: any output rate below 1e12 tok/s is pruned at its first step
    spec = validate_spec(_study(tiny_model, marker, {"name": "threshold", "options": {"lower": 1e12}}))
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=2)
    study = load_study("t", storage)
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    for t in study.trials:
        assert t.user_attrs["failure_kind"] == "pruned"
        assert "threshold pruner at step 0: output_tok_s" in t.user_attrs["failure"]
        assert list(t.intermediate_values) == [0] and t.intermediate_values[0] > 0
        assert t.user_attrs["metrics"]["output_tok_s"] == pytest.approx(t.intermediate_values[0])
    assert _servers(marker) == []  # stopped at once, nothing left behind
    c = MlflowClient(tracking_uri=tracking)
    exp = c.get_experiment_by_name("t")
    runs = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("workbench.role") == "trial"]
    assert len(runs) == 2
    for r in runs:
        assert r.data.tags["status"] == "PRUNED" and r.data.tags["failure_kind"] == "pruned"
        assert r.info.status == "KILLED" and "output_tok_s" in r.data.metrics
        assert "threshold pruner" in r.data.tags["failure"]
    # a run whose end was lost is repaired as pruned by the pruner, not as infeasible
    from workbench.tracking.base import TrialView
    from workbench.tracking.reconcile import reconcile_runs

    r = runs[0]
    c.set_terminated(r.info.run_id, status="FINISHED")
    n = int(r.data.tags["optuna_trial"])
    view = TrialView(number=n, state="PRUNED", run_id=r.info.run_id, failure_kind="pruned")
    assert reconcile_runs(c, exp.experiment_id, [view])["state_fixed"] == 1
    fixed = c.get_run(r.info.run_id)
    assert fixed.info.status == "KILLED" and fixed.data.tags["status"] == "PRUNED"


def test_without_a_pruner_every_load_is_measured(tiny_model, tmp_path):
    from workbench.trials.orchestrator.run import run_trial

    marker = f"wb-prune-{uuid.uuid4().hex[:8]}"
    spec = StudySpec.model_validate(_study(tiny_model, marker, {"name": "none"}))
    calls = []
    res = run_trial(spec, out_dir=tmp_path / "t", reporter=lambda step, m: calls.append(step))
    assert res.status == "COMPLETE", res.failure
    assert calls == [0, 1, 2, 3] and len(res.bench["sweep"]["points"]) == 4


@pytest.mark.parametrize(
    ("pruner", "message"),
    [
        ({"name": "median", "options": {"n_startup": 2}}, "unknown option of optuna.pruners.MedianPruner"),
        ({"name": "median", "options": {"n_startup_trials": "two"}}, "n_startup_trials must be int"),
        ({"name": "none", "options": {"x": 1}}, "pruner 'none' takes no options"),
        ({"name": "hyperband", "options": {"max_resource": "auto", "reduction_factor": 3}}, None),
    ],
)
def test_pruner_options_are_checked_against_optunas_signatures(tiny_model, tmp_path, pruner, message):
    import yaml

    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(_study(tiny_model, "m", pruner)))
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "validate", str(p)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if message is None:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert r.stderr.count("pruner.options") == 1


def test_a_pruner_needs_a_single_objective(tiny_model):
    data = _study(tiny_model, "m", {"name": "median"})
    data["objectives"] = [
        {"metric": "output_tok_s", "direction": "maximize"},
        {"metric": "ttft_ms_p95", "direction": "minimize"},
    ]
    with pytest.raises(ValueError, match="single-objective studies only"):
        StudySpec.model_validate(data)
