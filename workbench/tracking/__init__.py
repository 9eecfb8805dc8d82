"""Where a study's results go besides Optuna: an MLflow sink (or none), behind the `Tracker` protocol.

The sink imports neither the study layer nor the figures: the study layer hands it a
`StudySummary` and, from above, a figures factory. Modules: `base` (protocol, `NullTracker`,
`StudySummary`), `mlflow_sink` (`MlflowTracker`), `results` (a trial result as an MLflow batch),
`figures` (HTML/PNG figures into a run), `links` (the parent run found by name, cross-checks).
"""

from __future__ import annotations

from workbench.settings import DEFAULT_TRACKING_URI
from workbench.spec import StudySpec
from workbench.tracking.base import FiguresFactory, NullTracker, StudySummary, Tracker, TrialFigures
from workbench.tracking.figures import log_figures, png_enabled
from workbench.tracking.links import (
    ROLE,
    attach_to_study_run,
    link_url_attrs,
    log_crosscheck,
    study_run_id,
    ui_base_url,
)
from workbench.tracking.mlflow_sink import MlflowTracker
from workbench.tracking.results import RATIO_METRICS

#: the name `--tracking-uri none` had before the protocol

__all__ = [
    "DEFAULT_TRACKING_URI",
    "RATIO_METRICS",
    "ROLE",
    "FiguresFactory",
    "MlflowTracker",
    "NullTracker",
    "StudySummary",
    "Tracker",
    "TrialFigures",
    "attach_to_study_run",
    "link_url_attrs",
    "log_crosscheck",
    "log_figures",
    "make_tracker",
    "png_enabled",
    "study_run_id",
    "ui_base_url",
]


def make_tracker(
    tracking_uri: str | None,
    spec: StudySpec,
    storage_url: str = "",
    constraints: list[str] | None = None,
    trial_figures: TrialFigures | None = None,
) -> Tracker:
    """`none`/`off`: the `NullTracker`; anything else (None: the settings' default) an MLflow store."""
    if tracking_uri is not None and tracking_uri.lower() in ("none", "off"):
        return NullTracker()
    return MlflowTracker(tracking_uri, spec, storage_url, constraints, trial_figures)
