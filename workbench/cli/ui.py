"""Commands that start a web UI in place of this process: `dashboard` (optuna-dashboard on the study's
storage), `ui` (the MLflow UI on the tracking store) and `lab` (JupyterLab on the notebooks). Each is
`exec`ed, so Ctrl-C and other signals go straight to the server."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from workbench.cli.common import EXIT_OK, UsageError, open_study, storage, study_name, tracking


def dashboard(args: argparse.Namespace) -> int:
    from workbench.study import make_storage

    study = open_study(args)
    url = storage(args)
    study_id = make_storage(url).get_study_id_from_name(study.study_name)
    page = f"http://{args.host}:{args.port}/dashboard/studies/{study_id}"
    print(f"optuna-dashboard for study {study.study_name!r}: {page}  (Ctrl-C to stop)", flush=True)
    exe = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    os.execv(exe, [exe, url, "--host", args.host, "--port", str(args.port)])
    return EXIT_OK


def ui(args: argparse.Namespace) -> int:
    uri = tracking(args)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    page = f"http://{args.host}:{args.port}/"
    from workbench.tracking.mlflow_sink import init_lock
    from workbench.tracking.sqlite_store import ensure_sqlite_store

    with init_lock(uri):  # the server would otherwise create a new store itself, not atomically
        ensure_sqlite_store(uri)
    view = ""
    if args.study:
        from mlflow import MlflowClient

        exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(study_name(args.study))
        if exp is None:
            raise UsageError(f"no MLflow experiment named {study_name(args.study)!r} at {uri}")
        from workbench.tracking.view import runs_page

        view = runs_page(page, exp.experiment_id)  # the trials table, columns set for comparing
        page += f"#/experiments/{exp.experiment_id}/runs"
    print(f"MLflow UI: {page}  (Ctrl-C to stop)", flush=True)
    if view:
        print(f"  trials side by side (objectives, constraints, knobs as columns): {view}", flush=True)
    exe = str(Path(sys.executable).parent / "mlflow")
    server = [
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    os.execv(exe, [exe, *server])
    return EXIT_OK


def lab(args: argparse.Namespace) -> int:
    from workbench import settings

    notebooks = settings.project_root() / "notebooks"
    if not notebooks.is_dir():  # an installed workbench used outside a checkout: the checkout's notebooks
        notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or str(
        Path(sys.executable).parent / "jupyter-lab"
    )
    print(
        f"JupyterLab on http://{args.host}:{args.port}/lab (notebooks in {notebooks}; kernel: {sys.executable})"
    )
    argv = [
        exe,
        "--ip",
        args.host,
        "--port",
        str(args.port),
        "--no-browser",
        f"--ServerApp.root_dir={notebooks}",
    ]
    os.execv(exe, argv + (["--allow-root"] if os.geteuid() == 0 else []))
    return EXIT_OK
