"""What the command handlers share: exit codes, the bad-input error, reading a study file with `--set`,
opening a stored study by name or file, and the stores a command uses (flag > environment > default).
Standard library at module level; each helper imports what it needs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workbench import settings
from workbench.types import InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3


class UsageError(InputError):
    """A command was given something it cannot use: one message, exit code 2."""


def input_error(e: BaseException) -> UsageError:
    """A lower layer's lookup error (KeyError, ValueError) as one clean message (a KeyError's str() is
    its repr; its first argument is the message)."""
    return UsageError(str(e.args[0]) if e.args else str(e))


def storage(args: argparse.Namespace) -> str:
    """The Optuna storage of this command: --storage > WORKBENCH_STORAGE > the project default."""
    return settings.storage_url(getattr(args, "storage", None))


def tracking(args: argparse.Namespace) -> str:
    """The MLflow tracking URI of this command: --tracking-uri > MLFLOW_TRACKING_URI > the project default."""
    return settings.tracking_uri(getattr(args, "tracking_uri", None))


def load(path: str, assign: list[str], *, knobs_allowed: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The study file with `--set` study settings applied, and the `--set` knob values.

    `knobs_allowed` is None where knob values may be set; otherwise the message for a command that takes
    only study settings.
    """
    from workbench.spec import load_spec, parse_knob_assignments

    spec = load_spec(path)
    knobs, overrides = parse_knob_assignments(spec, assign)
    if knobs and knobs_allowed is not None:
        raise UsageError(knobs_allowed.format(knobs=", ".join(knobs)))
    if overrides:
        spec = load_spec(path, overrides)
    return spec, knobs


def require_engine(spec: Any) -> None:
    """Stop before any trial when the engine cannot run or a local path is missing here (every trial
    would fail the same way; a definition read back from storage was not checked for paths).

    A study whose `runtime:` names another interpreter or a container is checked there, by the worker.
    """
    from workbench.engines import get_engine_class
    from workbench.spec import require_local_paths

    require_local_paths(spec)
    if spec.runtime.python is not None or spec.runtime.container is not None:
        return
    cls = get_engine_class(spec.engine)
    why = cls.check_available_for(spec.options())
    if why:
        raise UsageError(why)


def is_study_file(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml"))


def study_name(arg: str) -> str:
    if is_study_file(arg) and Path(arg).exists():
        from workbench.spec import load_spec

        return load_spec(arg, check_paths=False).name
    return arg


def open_study(args: argparse.Namespace) -> Any:
    """The Optuna study named by `args.study` (a name or a study file) in this command's storage."""
    import optuna

    from workbench.study import load_study

    name, url = study_name(args.study), storage(args)
    try:
        return load_study(name, url)
    except KeyError:
        raise UsageError(f"no study named {name!r} in {url}") from None
    except optuna.exceptions.StorageInternalError as e:
        raise UsageError(str(e)) from None


def study_and_spec(args: argparse.Namespace) -> tuple[Any, Any]:
    """The Optuna study and its definition: from the YAML when given, else the one stored in the study."""
    from workbench.spec import load_spec
    from workbench.study import stored_spec

    study = open_study(args)
    if is_study_file(args.study):
        return study, load_spec(args.study, check_paths=False)  # inspecting: the model may be elsewhere
    try:
        return study, stored_spec(study)
    except KeyError as e:
        raise input_error(e) from None


def trial_of(study: Any, number: int | None) -> Any:
    from workbench.study import pick_trial

    try:
        return pick_trial(study, number)
    except KeyError as e:
        raise input_error(e) from None


def self_command() -> str:
    """How the user can call us again: `workbench` when it is on PATH, else the virtual environment's path."""
    import os
    import shutil

    exe = Path(sys.executable).parent / "workbench"
    on_path = shutil.which("workbench")
    if on_path and Path(on_path).resolve() == exe.resolve():
        return "workbench"
    try:
        return os.path.relpath(exe)
    except ValueError:
        return str(exe)
