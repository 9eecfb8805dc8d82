"""Every notebook, executed headless top to bottom on the tiny model (as a user would, in order)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

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
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(p.parent)}}
        ).execute()
        timings[p.name] = time.perf_counter() - t0
        texts[p.name] = _text(nb)
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
