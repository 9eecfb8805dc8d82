"""Default stores and environment variables: one rule for the command line and the notebook API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, scaled, small_study
from workbench import settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_STORAGE", "MLFLOW_TRACKING_URI")}
    return {**env, **extra}


def test_project_root_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROOT", raising=False)
    monkeypatch.delenv("WORKBENCH_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")  # the notebooks' kernel: the checkout's stores
    assert settings.project_root() == ROOT
    assert settings.storage_url() == f"sqlite:///{ROOT / 'studies' / 'optuna.db'}"
    assert settings.tracking_uri() == f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}"
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # outside any project: the current directory
    assert settings.project_root() == elsewhere.resolve()
    (tmp_path / "a" / ".workbench").mkdir()  # a folder that ran the workbench before is a project root
    assert settings.project_root() == (tmp_path / "a").resolve()
    monkeypatch.setenv("WORKBENCH_ROOT", str(tmp_path))
    assert settings.storage_url() == f"sqlite:///{tmp_path.resolve() / 'studies' / 'optuna.db'}"
    monkeypatch.setenv("WORKBENCH_STORAGE", "sqlite:///x.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "  ")  # empty: not set
    assert (
        settings.storage_url() == "sqlite:///x.db"
        and settings.storage_url("sqlite:///flag.db") == "sqlite:///flag.db"
    )
    assert settings.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"


def test_cli_and_api_resolve_the_same_stores():
    """The notebook API from notebooks/ and the CLI from the checkout's root use the same stores."""
    code = "import workbench.api as wb; print(wb.default_storage()); print(wb.default_tracking_uri())"
    api = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT / "notebooks",
        env=_env(),
        check=True,
    ).stdout.split()
    cli = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "doctor", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        check=True,
    )
    stores = json.loads(cli.stdout)["stores"]
    assert [stores["storage"]["url"], stores["tracking_uri"]["url"]] == api
    assert api[0] == f"sqlite:///{ROOT / 'studies' / 'optuna.db'}"


def test_cli_honours_env_stores_from_another_directory(tmp_path, tiny_model):
    """Bug B5: the CLI ignored WORKBENCH_STORAGE and MLFLOW_TRACKING_URI and wrote below the current directory."""
    import mlflow
    import optuna

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(small_study(tiny_model, name="envstores"), sort_keys=False))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    storage, tracking = f"sqlite:///{tmp_path}/env/optuna.db", f"sqlite:///{tmp_path}/env/mlruns/mlflow.db"
    (tmp_path / "env").mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "tune", str(study), "--n-trials", "0"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=scaled(600),
        env=_env(WORKBENCH_STORAGE=storage, MLFLOW_TRACKING_URI=tracking),
    )
    assert p.returncode == 0, p.stderr
    assert "is registered with its definition" in p.stdout
    assert optuna.load_study(study_name="envstores", storage=storage).user_attrs  # its definition is stored
    assert mlflow.MlflowClient(tracking_uri=tracking).get_experiment_by_name("envstores") is not None
    assert sorted(os.listdir(cwd)) == []  # nothing written where the command ran
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "status", "envstores", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(WORKBENCH_STORAGE=storage),
    )
    assert p.returncode == 0, p.stderr
    assert [r["baseline"] for r in json.loads(p.stdout)] == [True]  # the enqueued baseline, found via the env
    assert not Path(cwd / "studies").exists() and not Path(cwd / "mlruns").exists()
