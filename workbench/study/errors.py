"""The study layer's errors: a study file that does not match its stored study is bad input."""

from __future__ import annotations

from workbench.types import InputError


class StudyMismatch(InputError):
    """The study file disagrees with the study stored under its name (objectives, grid needs)."""


class TrialFailed(Exception):
    """A trial failed (its cause is in the trial's record); Optuna marks it FAIL and the study goes on."""
