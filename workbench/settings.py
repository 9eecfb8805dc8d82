"""Every default location and environment variable of the workbench, in one place, with one rule.

The rule, the same for the CLI, the notebook API and the trial worker:

    an environment variable, when set and not empty  >  the default under the project root

| what                 | variable               | default                                            |
|----------------------|------------------------|----------------------------------------------------|
| Optuna storage       | `WORKBENCH_STORAGE`    | `sqlite:///<root>/studies/optuna.db`               |
| MLflow tracking URI  | `MLFLOW_TRACKING_URI`  | `sqlite:///<root>/mlruns/mlflow.db` (artifacts in `<root>/mlruns/artifacts/`) |
| workbench home       | `WORKBENCH_HOME`       | `<root>/.workbench` (trial folders, engine cache, grids) |
| exports              | `WORKBENCH_EXPORTS`    | `<root>/exports`                                   |
| project root         | `WORKBENCH_ROOT`       | see below                                          |

A command-line flag (`--storage`, `--tracking-uri`) or a function argument beats both. `MLFLOW_TRACKING_URI`
is MLflow's own variable: honouring it is the ecosystem's convention.

**The project root** is, when `WORKBENCH_ROOT` is not set, the nearest folder from the current directory
upwards that holds a `pyproject.toml` or a `.workbench` folder; when there is none, the current directory.
So in a checkout the stores are the checkout's `studies/optuna.db` and `mlruns/mlflow.db` whether a command
runs from the checkout's root (the README's commands) or from `notebooks/` (the notebooks' kernel); an
installed workbench used in a project of one's own uses that project's folder; anywhere else, the current
directory. The defaults are absolute paths, so a worker or a server started in another folder finds the
same stores.

Standard library only: `workbench --help` and the trial worker import this without optuna or mlflow.
"""

from __future__ import annotations

import os
from pathlib import Path

# the default stores relative to the project root, as the README and `--help` show them
DEFAULT_STORAGE = "sqlite:///studies/optuna.db"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
DEFAULT_HOME = ".workbench"
DEFAULT_EXPORTS = "exports"

ENV_ROOT = "WORKBENCH_ROOT"
ENV_STORAGE = "WORKBENCH_STORAGE"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_HOME = "WORKBENCH_HOME"
ENV_EXPORTS = "WORKBENCH_EXPORTS"
ENV_FIGURE_PNG = "WORKBENCH_FIGURE_PNG"  # 0: never, 1: always, auto (default): when a Chromium is found
ENV_DASHBOARD_URL = "WORKBENCH_DASHBOARD_URL"
ENV_MLFLOW_UI_URL = "WORKBENCH_MLFLOW_UI_URL"

# the local servers: bound to the loopback interface unless the user says otherwise
DEFAULT_HOST = "127.0.0.1"
DASHBOARD_PORT = 8080
MLFLOW_UI_PORT = 5000
LAB_PORT = 8888

ROOT_MARKERS = ("pyproject.toml", DEFAULT_HOME)


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def project_root(start: Path | None = None) -> Path:
    """`WORKBENCH_ROOT`, else the nearest folder from `start` (the current directory) upwards holding a
    `pyproject.toml` or a `.workbench` folder, else `start` itself."""
    if (env := _env(ENV_ROOT)) is not None:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return here


def _sqlite_under_root(relative_url: str) -> str:
    return f"sqlite:///{project_root() / relative_url.removeprefix('sqlite:///')}"


def storage_url(explicit: str | None = None) -> str:
    """The Optuna storage: `explicit` (a flag or argument) > `WORKBENCH_STORAGE` > the project default."""
    return explicit or _env(ENV_STORAGE) or _sqlite_under_root(DEFAULT_STORAGE)


def tracking_uri(explicit: str | None = None) -> str:
    """The MLflow tracking URI: `explicit` > `MLFLOW_TRACKING_URI` > the project default ("none": no MLflow)."""
    return explicit or _env(ENV_TRACKING_URI) or _sqlite_under_root(DEFAULT_TRACKING_URI)


def is_default_storage(url: str) -> bool:
    """Whether `url` is what `storage_url()` gives without a flag (a printed command can then leave it out)."""
    return url == storage_url()


def workbench_home() -> Path:
    """Trial folders, the engine cache and recorded grids: `WORKBENCH_HOME` > `<root>/.workbench`."""
    env = _env(ENV_HOME)
    return Path(env).expanduser() if env else project_root() / DEFAULT_HOME


def exports_dir() -> Path:
    """Where exports go: `WORKBENCH_EXPORTS` > `<root>/exports`."""
    env = _env(ENV_EXPORTS)
    return Path(env).expanduser() if env else project_root() / DEFAULT_EXPORTS


def figure_png_flag() -> str:
    """`WORKBENCH_FIGURE_PNG`: "0" (never), "1" (always) or "auto" (when a Chromium is found; the default)."""
    return _env(ENV_FIGURE_PNG) or "auto"


def dashboard_url() -> str:
    """Where optuna-dashboard is reached, for links printed and logged."""
    return (_env(ENV_DASHBOARD_URL) or f"http://{DEFAULT_HOST}:{DASHBOARD_PORT}").rstrip("/")


def mlflow_ui_url() -> str:
    """Where the MLflow UI is reached, for links printed and logged."""
    return (_env(ENV_MLFLOW_UI_URL) or f"http://{DEFAULT_HOST}:{MLFLOW_UI_PORT}").rstrip("/")
