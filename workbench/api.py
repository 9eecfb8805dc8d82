"""The Python API for notebooks (and scripts): the same functions the CLI is built on.

    import workbench.api as wb
    spec = wb.load("../studies/quickstart.yaml", {"budget.n_trials": 4})
    run = wb.run(spec)                      # in the background, with a progress bar
    run.watch(wb.plots.optimization_history)  # a figure that updates after every trial
    df = run.frame()                        # the trials as a pandas DataFrame
    figs = wb.figures(run.study)            # every figure of the study

Storage and tracking follow `workbench.settings`, the same rule as the command line: an argument >
`WORKBENCH_STORAGE` / `MLFLOW_TRACKING_URI` > the embedded stores (`studies/optuna.db`, `mlruns/mlflow.db`)
under the project root (the nearest folder upwards holding a `pyproject.toml` or `.workbench`, so a
notebook in `notebooks/` and a command in the checkout use the same stores).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench import plots, settings
from workbench.spec import StudySpec, apply_changes, load_spec, require_local_paths, validate_spec

#: the project root (`workbench.settings.project_root`) when the notebook started: models/, studies/ ...
ROOT = settings.project_root()

#: plotly's mimetype (JupyterLab draws it) plus HTML with plotly.js embedded once per notebook (what
#: `jupyter nbconvert --to html` and other viewers draw, offline too). In a headless kernel plotly's
#: own default is the mimetype alone, and the figures vanish from an exported notebook.
NOTEBOOK_RENDERER = "plotly_mimetype+notebook"


def _use_notebook_renderer() -> None:
    """Set NOTEBOOK_RENDERER in a Jupyter kernel, unless the user chose one (PLOTLY_RENDERER)."""
    import os
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel") or os.environ.get("PLOTLY_RENDERER"):
        return
    import plotly.io as pio

    pio.renderers.default = NOTEBOOK_RENDERER


_use_notebook_renderer()

__all__ = [
    "load",
    "edit",
    "run",
    "study",
    "frame",
    "figures",
    "report",
    "export",
    "runs",
    "remeasure",
    "StudyRun",
    "plots",
]


def default_storage() -> str:
    """The Optuna storage used when none is given (`workbench.settings.storage_url`)."""
    return settings.storage_url()


def default_tracking_uri() -> str:
    """The MLflow tracking URI used when none is given (`workbench.settings.tracking_uri`)."""
    return settings.tracking_uri()


def exports_dir() -> Path:
    """Where exports go (`exports/` under the project root; `WORKBENCH_EXPORTS` overrides)."""
    return settings.exports_dir()


def load(path: str | Path, changes: dict[str, Any] | None = None, **kw: Any) -> StudySpec:
    """Read a study file, then apply `changes` (dotted keys, e.g. {"workload.num_requests": 8})."""
    spec = load_spec(path)
    return edit(spec, changes, **kw) if changes or kw else spec


def edit(spec: StudySpec, changes: dict[str, Any] | None = None, **kw: Any) -> StudySpec:
    """A copy of `spec` with changes applied and validated again (keyword form: workload__num_requests=8)."""
    data = spec.model_dump(mode="json", exclude_unset=True)
    changes = {**(changes or {}), **{k.replace("__", "."): v for k, v in kw.items()}}
    apply_changes(data, changes, none_removes=True)  # None: back to the default
    return validate_spec(data, source=f"{spec.name} (edited in code)", source_path=spec.source_path)


def study(name_or_spec: str | StudySpec, storage: str | None = None) -> Any:
    """The Optuna study, by name or by its definition."""
    from workbench.study import load_study

    name = name_or_spec.name if isinstance(name_or_spec, StudySpec) else name_or_spec
    return load_study(name, settings.storage_url(storage))


def _as_study(study_or_name: Any, storage: str | None) -> Any:
    """An Optuna study as given, or loaded by its name or definition."""
    return study(study_or_name, storage) if isinstance(study_or_name, (str, StudySpec)) else study_or_name


def frame(study_or_name: Any, storage: str | None = None) -> Any:
    """The trials as a DataFrame: knobs and metrics as columns, ratio to the baseline, MLflow run id."""
    from workbench.study import trials_frame

    s = _as_study(study_or_name, storage)
    return trials_frame(s)


def figures(study_or_name: Any, storage: str | None = None) -> dict[str, Any]:
    s = _as_study(study_or_name, storage)
    return plots.study_figures(s)


def report(
    study_or_name: Any,
    out: str | Path | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Write the self-contained HTML report and attach it to the study's MLflow parent run."""
    from workbench.report import write_report

    s = _as_study(study_or_name, storage)
    return write_report(s, Path(out) if out else None, tracking_uri=settings.tracking_uri(tracking_uri))


def export(
    study_or_name: Any, trial: int | None = None, out: str | Path | None = None, storage: str | None = None
) -> list[Path]:
    """Write the deployable configuration of a trial (default: the best)."""
    from workbench.export import export_trial

    s = _as_study(study_or_name, storage)
    return export_trial(s, trial, Path(out) if out else None)


def runs(experiments: list[str] | None = None, tracking_uri: str | None = None) -> Any:
    """Every trial run of the given studies (all when None) from MLflow, as mlflow.search_runs' DataFrame."""
    import mlflow

    from workbench.tracking import ROLE

    mlflow.set_tracking_uri(settings.tracking_uri(tracking_uri))
    names = experiments or [e.name for e in mlflow.search_experiments() if e.name != "Default"]
    return mlflow.search_runs(
        experiment_names=names, filter_string=f"tags.`{ROLE}` = 'trial'", max_results=10000
    )


def remeasure(spec: StudySpec, knobs: dict[str, Any], repeats: int = 3, progress: bool = True) -> Any:
    """Run one configuration `repeats` more times (fresh worker each) to confirm a pick; a DataFrame of metrics."""
    import pandas as pd
    from tqdm.auto import tqdm

    from workbench.trials.orchestrator.run import new_trial_id, run_trial

    rows = []
    for i in tqdm(range(repeats), desc="re-measure", disable=not progress):
        res = run_trial(spec, knobs, trial_id=f"remeasure-{new_trial_id()}")
        rows.append({"repeat": i, "status": res.status, **res.metrics})
    return pd.DataFrame(rows)


class StudyRun:
    """A study being tuned in a background thread; the notebook stays responsive."""

    def __init__(
        self, spec: StudySpec, n_trials: int | None, storage: str, tracking_uri: str, progress: bool
    ):
        from tqdm.auto import tqdm

        self.spec = spec
        self.storage = storage
        self.tracking_uri = tracking_uri
        self.target = n_trials or spec.budget.n_trials
        self.error: BaseException | None = None
        self.report: Any = None
        self.finished: list[int] = []
        self._stop = threading.Event()
        self._bar = tqdm(total=self.target, desc=spec.name, unit="trial") if progress else None
        self._thread = threading.Thread(
            target=self._run, args=(n_trials,), daemon=True, name=f"tune-{spec.name}"
        )

    def _run(self, n_trials: int | None) -> None:
        from workbench.study import tune

        def on_trial(t: Any) -> None:
            self.finished.append(t.number)
            if self._bar is not None and t.state.name in ("COMPLETE", "PRUNED"):
                self._bar.update(1)
                self._bar.set_postfix_str(f"trial {t.number} {t.state.name}")

        try:
            self.report = tune(
                self.spec,
                storage=self.storage,
                tracking_uri=self.tracking_uri,
                n_trials=n_trials,
                on_trial=on_trial,
                should_stop=self._stop.is_set,
                figures=plots.study_figures,
                trial_figures=plots.trial_figures,
            )
        except BaseException as e:  # noqa: BLE001 - surfaced by wait()
            self.error = e
        finally:
            if self._bar is not None:
                self._bar.close()

    def start(self) -> StudyRun:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Start no new trial; the running one finishes and is recorded."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> StudyRun:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self

    @property
    def study(self) -> Any:
        return study(self.spec, self.storage)

    def frame(self) -> Any:
        """The trials so far (empty until the background thread has created the study)."""
        import pandas as pd

        try:
            return frame(self.study)
        except KeyError:
            return pd.DataFrame()

    def watch(self, figure: Callable[[Any], Any] = plots.optimization_history, every_s: float = 1.0) -> Any:
        """Show `figure(trials DataFrame)` and redraw it after each finished trial until the run ends."""
        from IPython.display import display

        handle = None
        seen = -1
        while True:
            done = self.done
            if len(self.finished) != seen:
                seen = len(self.finished)
                fig = figure(self.frame())
                if handle is None:
                    handle = display(_bundle(fig), raw=True, display_id=True)
                else:
                    handle.update(_bundle(fig), raw=True)
            if done:
                break
            time.sleep(every_s)
        self.wait()
        return fig


def _bundle(fig: Any) -> dict[str, Any]:
    """The figure as a display bundle: a display handle updates only a bundle in place (plotly's own
    display ignores the display id and appends a new figure each time)."""
    return fig._repr_mimebundle_() if hasattr(fig, "_repr_mimebundle_") else {"text/plain": repr(fig)}


def run(
    spec: StudySpec,
    n_trials: int | None = None,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    background: bool = True,
    progress: bool = True,
) -> StudyRun:
    """Tune `spec` (create or resume) until it holds `n_trials` finished trials (default: its budget)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it better
    require_local_paths(spec)  # a study built in code: a missing model fails here, not in every trial
    r = StudyRun(spec, n_trials, settings.storage_url(storage), settings.tracking_uri(tracking_uri), progress)
    r.start()
    return r if background else r.wait()
