"""The README's facts against the code they describe, so a change to one fails until the other follows:
the notebook count, the retry limit of a killed trial, the documents it and pyproject.toml point to, and
the default stores of `workbench/settings.py`."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from workbench import settings

README = (ROOT / "README.md").read_text()


def test_notebook_count_and_table():
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    words = {4: "four", 5: "five", 6: "six"}
    assert f"all {words[len(notebooks)]} headless" in README
    assert all(f"| `{name}` |" in README for name in notebooks)


def test_killed_trial_retry_limit_matches_the_storage():
    from workbench.study.recovery import MAX_RETRY, CleanRetry

    limit = CleanRetry()._max_retry
    assert limit == MAX_RETRY
    assert f"`max_retry={limit}`" in README and "retried at most twice" in README and limit == 2


def test_documents_named_in_readme_and_pyproject_exist():
    text = README + (ROOT / "pyproject.toml").read_text()
    named = set(re.findall(r"\bdocs/[\w.-]+\.md\b", text))
    assert "docs/install.md" in named
    assert not [d for d in named if not (ROOT / d).is_file()]


def test_default_stores_are_the_readmes_rule(tmp_path, monkeypatch):
    for var in (
        "WORKBENCH_ROOT",
        "WORKBENCH_STORAGE",
        "MLFLOW_TRACKING_URI",
        "WORKBENCH_HOME",
        "WORKBENCH_EXPORTS",
    ):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # a notebook's kernel: the same stores as the checkout's root
    assert settings.storage_url() == f"sqlite:///{tmp_path}/studies/optuna.db"
    assert settings.tracking_uri() == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert settings.workbench_home() == tmp_path / ".workbench"
    assert settings.exports_dir() == tmp_path / "exports"
    for says in (
        "`<root>/studies/optuna.db`",
        "`<root>/mlruns/mlflow.db`",
        "`<root>/.workbench`",
        "`<root>/exports`",
    ):
        assert says in README
    monkeypatch.setenv("WORKBENCH_STORAGE", "sqlite:///elsewhere.db")
    assert (
        settings.storage_url() == "sqlite:///elsewhere.db" and settings.storage_url("x://flag") == "x://flag"
    )
