"""Figures, the HTML report, the links between the two UIs, and both UIs in a real headless Chromium.

One small study on the tiny model (real Optuna SQLite, real MLflow store) feeds every test here. The
browser test starts the real optuna-dashboard and `mlflow server`, loads their pages in Debian's
Chromium and asserts on the rendered DOM; screenshots go to $WORKBENCH_HOME/screenshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import scaled
from tests.test_study import fast_study
from workbench import plots
from workbench.spec import validate_spec
from workbench.study import load_study, trials_frame, tune

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def finished(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    storage, tracking = f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlruns/mlflow.db"
    spec = validate_spec(
        fast_study(
            tiny_model,
            name="uistudy",
            **{"search_space.quantization": {"choices": ["none", "int8"]}},
            objectives=[{"metric": "output_tok_s", "direction": "maximize"}],
        )
    )
    old = os.environ.get("WORKBENCH_FIGURE_PNG")
    os.environ["WORKBENCH_FIGURE_PNG"] = "1" if CHROMIUM else "0"
    try:
        tune(spec, storage=storage, tracking_uri=tracking, n_trials=4, figures=plots.study_figures)
    finally:
        os.environ["WORKBENCH_FIGURE_PNG"] = old or "0"
    return {"study": load_study("uistudy", storage), "storage": storage, "tracking": tracking, "tmp": tmp}


def test_figures_hold_the_study_values(finished):
    from workbench import plots

    study = finished["study"]
    df = trials_frame(study)
    done = df[df.state == "COMPLETE"]
    assert len(done) == 4 and set(done.quantization) <= {"none", "int8"}
    hist = plots.optimization_history(df, "output_tok_s")
    assert list(hist.data[0].y) == list(done.sort_values("number").output_tok_s)
    assert max(hist.data[1].y) == done.output_tok_s.max()  # best so far ends at the best
    base = float(done[done.baseline].output_tok_s.iloc[0])
    assert any(s.y0 == base for s in hist.layout.shapes)  # the baseline is drawn
    mem = plots.memory_breakdown(df)
    total = [sum(t.y[i] for t in mem.data) for i in range(len(done))]
    assert total == pytest.approx(list(done.sort_values("number").peak_memory_gb), rel=1e-6, abs=1e-9)
    pf = plots.pareto_front(df, y="ttft_ms_p95", y_maximize=False)
    front = pf.data[-1]
    assert front.name == "Pareto front" and len(front.x) >= 1
    assert done.output_tok_s.max() in list(front.x)  # the fastest trial is always on this front
    assert {t.name for t in pf.data[:-1]} <= {"quantization=none", "quantization=int8"}
    lat = plots.latency_curves(df)
    assert {t.name.split()[-1] for t in lat.data} == {"p50", "p95", "p99"}
    assert plots.pareto_mask([(1, 1), (2, 0), (0, 0)], (True, True)) == [True, True, False]
    figs = plots.study_figures(study, df)
    assert set(figs) == {
        "optimization_history",
        "pareto_front",
        "param_importances",
        "parallel_coordinates",
        "latency_curves",
        "memory_breakdown",
        "accuracy_by_quantization",
        "roofline",
    }
    roof = plots.roofline(df)
    achieved = sorted(y for t in roof.data[:-1] for y in t.y)
    assert achieved == sorted(done.output_tok_s) and roof.data[-1].name.startswith("bound")
    assert all(x > y for t in roof.data[:-1] for x, y in zip(t.x, t.y, strict=True))  # below the bound


def test_accuracy_figure_error_bars_and_gate():
    import pandas as pd

    from workbench.plots import accuracy_by_quantization

    df = pd.DataFrame(
        {
            "number": [0, 1],
            "state": ["COMPLETE"] * 2,
            "quantization": ["none", "int8"],
            "gsm8k_score": [50.0, 40.0],
            "gsm8k_n": [100, 100],
        }
    )
    fig = accuracy_by_quantization(df, gate=45.0)
    bar = fig.data[0]
    assert list(bar.x) == ["int8", "none"] and list(bar.y) == [40.0, 50.0]
    assert list(bar.error_y.array) == pytest.approx([100 * (0.4 * 0.6 / 100) ** 0.5, 5.0])
    assert fig.layout.shapes[0].y0 == 45.0


def test_report_is_self_contained_and_attached(finished, tmp_path):
    from workbench.report import write_report

    out = write_report(finished["study"], tmp_path / "r.html", tracking_uri=finished["tracking"])
    html = out.read_text()
    assert "<script src=" not in html and "plotly" in html.lower()  # plotly.js inline: opens offline
    for name in (
        "optimization history",
        "pareto front",
        "memory breakdown",
        "Best configurations",
        "Environment",
    ):
        assert name in html
    best = max(t.values[0] for t in finished["study"].trials if t.values)
    assert f"{best:.4g}" in html
    c = MlflowClient(finished["tracking"])
    exp = c.get_experiment_by_name("uistudy")
    (parent,) = c.search_runs([exp.experiment_id], filter_string="tags.`workbench.role` = 'study'")
    arts = {a.path for a in c.list_artifacts(parent.info.run_id, "report")}
    assert arts == {"report/r.html"}
    figs = {a.path for a in c.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/optimization_history.html" in figs and "figures/pareto_front.html" in figs
    if CHROMIUM:  # kaleido renders PNG copies with the same Chromium
        assert "figures/pareto_front.png" in figs and "figures_png_error" not in parent.data.tags


def test_trials_and_runs_link_to_each_other(finished):
    study = finished["study"]
    c = MlflowClient(finished["tracking"])
    for t in study.trials:
        run = c.get_run(t.user_attrs["mlflow_run_id"])
        assert t.user_attrs["mlflow_run_url"].endswith(
            f"/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        )
        url = run.data.tags["optuna_dashboard_url"]
        assert url.endswith(f"/dashboard/studies/{study._study_id}/trials?numbers={t.number}")
        assert url in run.data.tags["mlflow.note.content"]
    import optuna
    from optuna_dashboard import get_note

    t1 = study.trials[1]
    assert t1.user_attrs["mlflow_run_url"] in get_note(optuna.trial.Trial(study, t1._trial_id))


# ----------------------------------------------------------------------------------- real browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < scaled(timeout):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _chromium(url: str, shot: Path | None = None, height: int = 1600, budget_ms: int = 15000) -> str:
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size=1600,{height}",
        f"--virtual-time-budget={budget_ms}",
    ]
    if shot is not None:
        subprocess.run([*args, f"--screenshot={shot}", url], capture_output=True, timeout=scaled(300))
    return subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, text=True, timeout=scaled(300)
    ).stdout


def _page(url: str, shot: Path, expect: list[str], height: int = 1600) -> str:
    """The page's text once everything expected is rendered (a loaded machine may need a second look)."""
    text = ""
    for budget in (15000, 30000, 60000, 90000, 120000):  # more patience each time
        text = _cells(_chromium(url, shot, height, budget))
        if all(e in text for e in expect):
            return text
        time.sleep(3)
    return text


def _cells(dom: str) -> str:
    """The page's visible text, cell by cell, '|'-separated."""
    t = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    t = re.sub(r"<[^>]+>", "|", t)
    return re.sub(r"\|\s*(\|\s*)+", "|", t)


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="no Chromium here (CI installs it)"
)
def test_both_uis_in_a_real_browser(finished):
    assert CHROMIUM, "CI must have Chromium (.ci/run installs Debian's chromium)"
    study = finished["study"]
    home = Path(os.environ.get("WORKBENCH_HOME", finished["tmp"]))
    shots = home / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    dport, mport = _free_port(), _free_port()
    db = finished["tracking"]
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "optuna-dashboard"),
                finished["storage"],
                "--host",
                "127.0.0.1",
                "--port",
                str(dport),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        subprocess.Popen(
            [
                str(bin_dir / "mlflow"),
                "server",
                "--backend-store-uri",
                db,
                "--host",
                "127.0.0.1",
                "--port",
                str(mport),
                "--workers",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        ),
    ]
    try:
        _wait(f"http://127.0.0.1:{dport}/dashboard", procs[0])
        _wait(f"http://127.0.0.1:{mport}/health", procs[1])
        trials = study.trials
        best = max((t for t in trials if t.values), key=lambda t: t.values[0])

        # optuna-dashboard: every trial listed, and a trial's metric value and its link to MLflow
        url = f"http://127.0.0.1:{dport}/dashboard/studies/{study._study_id}/trials?numbers={best.number}"
        dom = ""
        for _ in range(4):  # a loaded machine may need a second look
            dom = _chromium(url, shots / "optuna_dashboard_trial.png")
            if repr(best.user_attrs["metrics"]["output_tok_s"]) in dom:
                break
        listed = set(re.findall(r"Trial (\d+)", _cells(dom)))
        assert listed == {str(t.number) for t in trials}
        assert repr(best.user_attrs["metrics"]["output_tok_s"]) in dom
        assert best.user_attrs["mlflow_run_url"] in dom or best.user_attrs["mlflow_run_id"] in dom

        # MLflow: the study's runs page counts the study run and every trial run
        c = MlflowClient(db)
        exp = c.get_experiment_by_name("uistudy")
        text = _page(
            f"http://127.0.0.1:{mport}/#/experiments/{exp.experiment_id}/runs",
            shots / "mlflow_runs.png",
            ["matching runs"],
        )
        m = re.search(r"\|(\d+)\|?\s*matching runs", text)
        assert m is not None and int(m.group(1)) == len(trials) + 1, text[:3000]  # the study run + each trial
        assert "uistudy (study)" in text

        # the workbench's view (what `workbench ui` opens): the model-training runs table with the
        # trial runs named by their knobs and the key metrics as columns
        from workbench.tracking.view import runs_page

        named = [
            r.info.run_name for r in c.search_runs([exp.experiment_id]) if r.info.run_name.startswith("#")
        ]
        text = _page(
            runs_page(f"http://127.0.0.1:{mport}", exp.experiment_id),
            shots / "mlflow_view.png",
            ["Training runs", "output_tok_s", named[0]],
        )
        assert "Training runs" in text and "output_tok_s" in text and "peak_memory_gb" in text
        assert all(n in text for n in named), (named, text[:3000])

        # a trial's run page shows its metric and the link back to its Optuna trial
        rid = best.user_attrs["mlflow_run_id"]
        urllib.request.urlopen(
            f"http://127.0.0.1:{mport}/ajax-api/2.0/mlflow/runs/get?run_id={rid}", timeout=60
        ).read()
        text = _page(
            f"http://127.0.0.1:{mport}/#/experiments/{exp.experiment_id}/runs/{rid}",
            shots / "mlflow_run.png",
            ["output_tok_s", "dashboard/studies"],
            height=3000,
        )
        assert (
            "output_tok_s" in text and repr(best.user_attrs["metrics"]["output_tok_s"])[:6] in text
        )  # shown unrounded
        assert f"/dashboard/studies/{study._study_id}/trials?numbers={best.number}" in text

        # the compare view of three trial runs: knobs and metrics side by side
        three = [t for t in trials if "mlflow_run_id" in t.user_attrs][:3]
        ids = [t.user_attrs["mlflow_run_id"] for t in three]
        q = (
            "runs="
            + urllib.parse.quote(json.dumps(ids))
            + "&experiments="
            + urllib.parse.quote(json.dumps([exp.experiment_id]))
        )
        text = _page(
            f"http://127.0.0.1:{mport}/#/compare-runs?{q}",
            shots / "mlflow_compare.png",
            ["|max_batch_size|", "output_tok_s"],
            height=4000,
        )
        runs = [c.get_run(i) for i in ids]
        side_by_side = "|max_batch_size|" + "|".join(r.data.params["max_batch_size"] for r in runs) + "|"
        assert side_by_side in text
        kv = "|".join(str(int(r.data.metrics["kv_cache_tokens"])) for r in runs)
        assert kv in text and "output_tok_s" in text
        for png in ("optuna_dashboard_trial", "mlflow_runs", "mlflow_run", "mlflow_compare"):
            assert (shots / f"{png}.png").stat().st_size > 10_000
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
