"""Recorded grids, the replay engine, the committed H200 grid, and studies imported from elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import ROOT, scaled, small_study
from workbench.grid import GridError, best_point, load_grid, points
from workbench.spec import SpecError, load_spec, validate_spec
from workbench.study import load_study, tune
from workbench.trials.knobs import baseline_knobs

WB = [sys.executable, "-m", "workbench.cli"]
H200_GRID = ROOT / "studies/grids/h200-llama-3.1-8b-hf.jsonl"


def _grid_study(tiny_model: Path) -> dict:
    data = small_study(tiny_model, **{"name": "g"})
    data["search_space"] = {
        "max_batch_size": {"choices": [2, 8]},
        "quantization": {"choices": ["none", "int8"]},
        "max_num_tokens": 128,
        "page_size": 16,
    }
    data["baseline"] = {"max_batch_size": 8, "max_num_tokens": 128}
    data["constraints"] = [{"metric": "peak_memory_gb", "max": 4}]
    return data


@pytest.fixture(scope="module")
def recorded(tiny_model, tmp_path_factory):
    """A 4-point grid of the tiny model, recorded by the CLI with model reuse (stopped once, then resumed)."""
    d = tmp_path_factory.mktemp("grid")
    study = d / "g.yaml"
    study.write_text(yaml.safe_dump(_grid_study(tiny_model)))
    out = d / "grid.jsonl"
    first = subprocess.run(
        [*WB, "grid", str(study), "--out", str(out), "--reuse-model", "--time-budget", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert first.returncode == 1 and "1 of 4 points recorded" in first.stdout, first.stdout + first.stderr
    again = subprocess.run(
        [*WB, "grid", str(study), "--out", str(out), "--reuse-model"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert again.returncode == 0 and "4 of 4 points recorded (4 complete)" in again.stdout, (
        again.stdout + again.stderr
    )
    return d, study, out


def test_grid_file_holds_every_point_once_with_metrics_and_environment(recorded, tiny_model):
    _, study, out = recorded
    grid = load_grid(out)
    assert grid.header["schema"] == "workbench.grid" and grid.header["axes"] == {
        "max_batch_size": [2, 8],
        "quantization": ["none", "int8"],
    }
    assert grid.header["environment"]["device"]["kind"] == "cpu" and "packages" in grid.header["environment"]
    assert len(grid.points) == 4 and grid.size() == 4
    spec = load_spec(study)
    assert [p["knobs"] for p in grid.points] == points(spec)  # quantization (build-time) varies slowest
    for p in grid.points:
        assert p["status"] == "COMPLETE" and p["metrics"]["output_tok_s"] > 0
        assert 0 < p["metrics"]["roofline_fraction"] < 1 and p["metrics"]["peak_memory_gb"] > 0
    reused = [p["engine_config"]["model_reused"] for p in grid.points]
    assert reused == [
        False,
        False,
        False,
        True,
    ]  # loaded once per process and model: the resumed run reloads none
    w = {p["knobs"]["quantization"]: p["engine_config"]["weights_bytes"] for p in grid.points}
    assert w["int8"] < w["none"]


def test_grid_header_baseline_is_the_baseline_that_runs(tiny_model):
    """Bug B3: the header's baseline left out the study's fixed knobs (page_size 16 here, default 256)."""
    from workbench.grid import header
    from workbench.trials.knobs import resolve_knobs

    spec = validate_spec(_grid_study(tiny_model))
    head = header(spec, {}, "test")
    assert head["baseline"]["page_size"] == 16 and head["baseline"]["max_num_tokens"] == 128
    assert head["baseline"] == resolve_knobs(spec, {})  # the knobs the baseline trial runs with


def test_grid_refuses_another_studys_file(recorded, tiny_model, tmp_path):
    _, _, out = recorded
    other = _grid_study(tiny_model)
    other["workload"]["num_requests"] = 5
    f = tmp_path / "o.yaml"
    f.write_text(yaml.safe_dump(other))
    r = subprocess.run([*WB, "grid", str(f), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "workload differs" in r.stderr and "use another --out file" in r.stderr
    assert len(load_grid(out).points) == 4  # nothing lost


def test_torn_last_line_is_redone_and_garbage_is_an_error(recorded, tmp_path):
    _, _, out = recorded
    lines = out.read_text().splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(lines) + "\n" + lines[-1][:40])
    assert len(load_grid(torn).points) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{nope", lines[1]]) + "\n")
    with pytest.raises(GridError, match=r"bad.jsonl:2: not JSON"):
        load_grid(bad)
    other = tmp_path / "x.jsonl"
    other.write_text('{"a": 1}\n')
    with pytest.raises(GridError, match="not a workbench grid"):
        load_grid(other)


def _replay_study(d: Path, recorded_study: Path, **changes) -> Path:
    data = yaml.safe_load(recorded_study.read_text())
    data.update(name="r", engine="replay", engine_options={"grid": "grid.jsonl"})
    data["search_space"] = {
        "max_batch_size": {"choices": [2, 8, 32]},
        "quantization": {"choices": ["none", "int8"]},
        "max_num_tokens": 128,
        "page_size": 16,
    }
    data.update(changes)
    f = d / "r.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_replay_study_answers_from_the_grid(recorded, tmp_path):
    d, study, out = recorded
    f = _replay_study(d, study)
    spec = load_spec(f)
    rep = tune(spec, storage=optuna.storages.InMemoryStorage(), tracking_uri="none", n_trials=6)
    grid = load_grid(out)
    done = [
        t for t in rep.study.trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    assert done and done[0].user_attrs["baseline"]
    for t in done:  # the very numbers that were measured
        assert t.user_attrs["metrics"] == grid.find(t.user_attrs["knobs"])["metrics"]
        res = json.loads(Path(t.user_attrs["result_path"]).read_text())
        assert res["engine"] == "replay" and res["environment"]["replayed_from"] == str(out)
        assert res["environment"]["recorded"]["device"]["kind"] == "cpu"
    pruned = [t for t in rep.study.trials if t.state == TrialState.PRUNED]
    for t in pruned:  # 32 was never recorded: infeasible, with what the grid holds
        assert t.params["max_batch_size"] == 32
        assert (
            "max_batch_size=32 is not in the recorded grid grid.jsonl (it holds [2, 8])"
            in t.user_attrs["failure"]
        )


def test_replay_refuses_a_missing_grid_and_another_workload(recorded, tmp_path):
    d, study, _ = recorded
    f = _replay_study(d, study, engine_options={"grid": "missing.jsonl"})
    with pytest.raises(SpecError, match=r"engine_options\.grid.*no grid file at .*missing\.jsonl"):
        load_spec(f)
    f = _replay_study(d, study)
    spec = load_spec(f, {"workload.num_requests": 3})
    rep = tune(spec, storage=optuna.storages.InMemoryStorage(), tracking_uri="none", n_trials=1)
    t = rep.study.trials[0]
    assert t.state == TrialState.FAIL and "invalid_input" in t.user_attrs["failure_kind"]
    assert "workload differs from the one recorded" in t.user_attrs["failure"]


def test_the_recorded_h200_grid():
    """The dataset in the project: 36 measured points of Llama-3.1-8B's shape on one H200."""
    grid = load_grid(H200_GRID)
    env = grid.header["environment"]
    assert env["device"]["name"] == "NVIDIA H200" and env["gpu"]["driver"]
    assert grid.size() == 48 and len(grid.points) == 36
    assert all(p["status"] == "COMPLETE" for p in grid.points)
    assert {p["knobs"]["quantization"] for p in grid.points} == {"none", "float8_dynamic", "int4"}
    for p in grid.points:  # a measured copy bandwidth, below the 4.8 TB/s of the data sheet
        assert 3000 < p["metrics"]["memory_bandwidth_gb_s"] < 4800
        assert 0 < p["metrics"]["roofline_fraction"] < 0.1
    spec = load_spec(ROOT / "studies/h200-replay.yaml")
    best = best_point(grid, spec)
    assert {k: best["knobs"][k] for k in grid.axis_names} == {
        "quantization": "none",
        "max_batch_size": 32,
        "max_num_tokens": 512,
        "kv_cache_fraction": 0.02,
    }
    base = grid.find(baseline_knobs(spec))
    assert base["metrics"]["output_tok_s"] > best["metrics"]["output_tok_s"]  # the defaults are faster, but
    assert base["metrics"]["peak_memory_gb"] > 48  # take the whole GPU


def test_tracking_none_then_import_logs_every_trial(tiny_model, tmp_path):
    from mlflow import MlflowClient

    from workbench.transfer import import_study

    spec = validate_spec(small_study(tiny_model, **{"name": "imp"}))
    src = f"sqlite:///{tmp_path}/there.db"
    tune(spec, storage=src, tracking_uri="none", n_trials=2)
    there = load_study("imp", src)
    assert all("mlflow_run_id" not in t.user_attrs for t in there.trials)
    tracking = f"sqlite:///{tmp_path}/ml.db"
    # the trial folders were copied elsewhere: import finds them by their path below WORKBENCH_HOME
    import os
    import shutil

    moved = tmp_path / "copied-home"
    shutil.copytree(Path(os.environ["WORKBENCH_HOME"]) / "studies" / "imp", moved / "studies" / "imp")
    here = import_study("imp", src, moved, f"sqlite:///{tmp_path}/here.db", tracking)
    assert [t.number for t in here.trials] == [t.number for t in there.trials]
    assert [t.values for t in here.trials] == [t.values for t in there.trials]
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("imp")
    for t in here.trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna_trial"] == str(t.number)
        assert run.data.metrics["output_tok_s"] == pytest.approx(t.user_attrs["metrics"]["output_tok_s"])
        assert t.user_attrs["result_path"].startswith(str(moved))
        assert t.user_attrs["mlflow_run_url"].endswith(
            f"/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}"
        )
    with pytest.raises(ValueError, match="already holds 2 trials"):
        import_study("imp", src, moved, f"sqlite:///{tmp_path}/here.db", tracking)


def test_the_recorded_h200_study_imports_without_its_trial_folders(tmp_path):
    from workbench.transfer import import_study

    src = tmp_path / "h200.db"
    src.write_bytes((ROOT / "studies/records/h200-llama-3.1-8b-study.db").read_bytes())
    here = import_study(
        "h200-llama-3.1-8b",
        f"sqlite:///{src}",
        tmp_path,
        f"sqlite:///{tmp_path}/o.db",
        f"sqlite:///{tmp_path}/ml.db",
    )
    assert len(here.trials) == 7 and all(t.state == TrialState.COMPLETE for t in here.trials)
    base = here.trials[0]
    assert base.user_attrs["baseline"] and base.values[0] == pytest.approx(507.1, abs=0.1)
    assert all(t.user_attrs["result_file"].startswith("not available") for t in here.trials)
    assert all(t.user_attrs["mlflow_run_id"] for t in here.trials)


def test_status_shows_the_roofline(recorded, tmp_path):
    d, study, out = recorded
    f = _replay_study(d, study)
    storage = f"sqlite:///{tmp_path}/s.db"
    r = subprocess.run(
        [*WB, "tune", str(f), "--storage", storage, "--tracking-uri", "none", "--n-trials", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    s = subprocess.run([*WB, "status", "r", "--storage", storage], cwd=ROOT, capture_output=True, text=True)
    head, base_row = s.stdout.splitlines()[:2]
    assert "roofline (est.)" in head
    from workbench.trials.knobs import resolve_knobs

    base = load_grid(out).find(resolve_knobs(load_spec(f), {}))
    assert f"{100 * base['metrics']['roofline_fraction']:.1f}%" in base_row
    assert "roofline (est.): output tok/s over the decode-phase bound" in s.stdout


def test_strategies_compare_on_the_h200_grid():
    from workbench import strategies

    spec = load_spec(ROOT / "studies/h200-replay.yaml")
    best, goal = strategies.target(spec, 0.03)
    assert goal == pytest.approx(0.97 * best["metrics"]["output_tok_s"])
    runs = strategies.compare(spec, ("tpe", "random", "grid"), seeds=2)
    assert len(runs) == 6 and runs.reached.all()
    assert (runs.measurements <= runs.trials).all() and (runs.measurements <= 36).all()
    g = runs[runs.sampler == "grid"]
    assert (
        (g.trials - g.measurements) <= 1
    ).all()  # grid repeats only the baseline's point, answered for free
    again = strategies.compare(spec, ("tpe",), seeds=2)
    assert list(again.measurements) == list(runs[runs.sampler == "tpe"].measurements)  # seeded: reproducible
    s = strategies.summary(runs)
    assert set(s) == {"tpe", "random", "grid"} and all(v["reached"] == 2 for v in s.values())
