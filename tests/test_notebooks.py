"""Every notebook, executed headless top to bottom on the tiny model (as a user would, in order)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT, scaled

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_numbered_and_stripped():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, f"{p.name} has outputs in git"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "MODEL = None" in tagged[0].source  # the one cell to change on a GPU


PLOTLY = "application/vnd.plotly.v1+json"


def _plotly_outputs(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if PLOTLY in o.get("data", {})]


def _assert_figures_survive_html(nb: nbformat.NotebookNode, name: str) -> None:
    """Every plotly figure of the executed notebook is drawn in its HTML export, with plotly.js inside
    (offline), and a watched figure is one output updated in place, not one per trial."""
    from nbconvert import HTMLExporter

    figures = [o for c in nb.cells for o in _plotly_outputs(c)]
    for c in nb.cells:
        if ".watch(" in c.get("source", ""):
            assert len(_plotly_outputs(c)) == 1, f"{name}: the watched figure was appended, not updated"
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert all("text/html" in o.data for o in figures), f"{name}: a figure has no HTML form"
    assert html.count('class="plotly-graph-div"') == len(figures), name
    if figures:
        assert "plotly.js v" in html, f"{name}: plotly.js is not embedded"
        for o in figures:  # each figure's own data is in the page (typed arrays as base64, or values)
            y = o.data[PLOTLY]["data"][0].get("y")
            mark = y["bdata"] if isinstance(y, dict) else json.dumps(y[-1]) if y else None
            escaped = mark.replace("/", "\\u002f") if mark else None  # plotly's HTML escapes "/"
            assert mark is None or mark in html or escaped in html, f"{name}: a figure's data is missing"


def test_watch_updates_one_output_and_html_keeps_it():
    """The display mechanism of `StudyRun.watch` in a real kernel, fast: a figure shown and updated three
    times is one output holding the last figure; a plain figure beside it; both survive HTML export."""
    from nbformat.v4 import new_code_cell, new_notebook

    watched = (
        "import workbench.api as wb, plotly.graph_objects as go\n"
        "from IPython.display import display\n"
        "h = display(wb._bundle(go.Figure(go.Scatter(y=[0]))), raw=True, display_id=True)  # as .watch( does\n"
        "for i in range(1, 4):\n"
        "    h.update(wb._bundle(go.Figure(go.Scatter(y=[i * 111111]))), raw=True)\n"
    )
    nb = new_notebook(cells=[new_code_cell(watched), new_code_cell("go.Figure(go.Bar(y=[424242]))")])
    client = NotebookClient(
        nb, timeout=int(scaled(300)), kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    assert [len(_plotly_outputs(c)) for c in nb.cells] == [1, 1]
    assert _plotly_outputs(nb.cells[0])[0].data[PLOTLY]["data"][0]["y"] == [333333]
    _assert_figures_survive_html(nb, "mechanism")


def _text(nb: nbformat.NotebookNode) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.output_type == "stream" and o.name == "stdout":
                out.append(o.text)
            elif o.output_type == "error":
                out.append("\n".join(o.traceback))
    return "\n".join(out)


@pytest.mark.slow
def test_every_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORAGE", f"sqlite:///{tmp_path / 'optuna.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("WORKBENCH_EXPORTS", str(tmp_path / "exports"))
    timings = {}
    texts = {}
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(
            nb,
            timeout=int(scaled(900)),
            kernel_name="python3",
            resources={"metadata": {"path": str(p.parent)}},
        ).execute()
        timings[p.name] = time.perf_counter() - t0
        texts[p.name] = _text(nb)
        _assert_figures_survive_html(nb, p.name)
    (Path(os.environ.get("WORKBENCH_HOME", tmp_path)) / "notebook_timings.json").write_text(
        json.dumps(timings)
    )
    print(
        "notebook timings (s):",
        {k: round(v, 1) for k, v in timings.items()},
        "total",
        round(sum(timings.values()), 1),
    )
    t1, t2, t3, t4, t5 = (texts[p.name] for p in NOTEBOOKS)
    assert "best: trial" in t1 and "x the baseline" in t1 and "/#/experiments/" in t1
    assert (
        "unknown metric 'tokens_per_second'" in t2
        and "Pareto set:" in t2
        and "'int3' is not allowed for quantization" in t2
    )
    assert "trial runs in 2 studies" in t3  # notebooks 01 and 02 made them
    assert "re-measured: median" in t4
    assert "36 of 48 points" in t5 and "on NVIDIA H200" in t5 and "achieved / bound: 0.3% to 3.6%" in t5
    assert "best feasible: trial" in t5 and "x the engine defaults" in t5
    assert all(f"{s:7} reached 3/3" in t5 for s in ("tpe", "nsga2", "gp", "random", "grid"))
    exported = list((tmp_path / "exports").glob("nb-quickstart-trial*/trial.json"))
    assert len(exported) == 1 and json.loads(exported[0].read_text())["study"] == "nb-quickstart"
