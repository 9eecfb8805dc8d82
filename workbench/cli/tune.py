"""Commands that run a study's trials: `tune` (here, or one worker per GPU) and `worker` (join a study)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    input_error,
    is_study_file,
    load,
    require_engine,
    self_command,
    storage,
    study_and_spec,
    tracking,
)


def _trial_line(spec: Any, t: Any, role: bool = True) -> str:
    """What one finished trial says: its state and objective values, or its failure; its role."""
    from workbench.study import TrialRecord

    rec = TrialRecord.read(t)
    what = rec.failure or ", ".join(
        f"{o.metric}={rec.metrics.get(o.metric, float('nan')):.4g}" for o in spec.objectives
    )
    if not role:
        tag = ""
    elif rec.baseline:
        tag = " (baseline)"
    elif rec.is_duplicate:
        tag = f" (same knobs as trial {rec.duplicate_of})"
    else:
        tag = ""
    note = rec.constraint_note
    return f"trial {t.number}{tag}: {t.state.name} {what}" + (f"\n  note: {note}" if note else "")


def _study_figures(study: Any) -> dict[str, Any]:
    """The study's figures; plotly is imported only when a tracker logs them (not with `--tracking-uri none`)."""
    from workbench.plots import study_figures

    return study_figures(study)


def _trial_figures(result: Any) -> dict[str, Any]:
    from workbench.plots import trial_figures

    return trial_figures(result)


def _run(spec: Any, args: argparse.Namespace, on_trial: Callable[[Any], None], **kw: Any) -> Any:
    """`workbench.study.tune` with this command's stores; a study that does not match is bad input."""
    from workbench.study import StudyMismatch, tune

    try:
        return tune(
            spec,
            storage=storage(args),
            tracking_uri=tracking(args),
            n_trials=args.n_trials,
            on_trial=on_trial,
            figures=_study_figures,
            trial_figures=_trial_figures,
            **kw,
        )
    except StudyMismatch as e:
        raise input_error(e) from None


def tune(args: argparse.Namespace) -> int:
    from workbench.study import redact

    spec, _ = load(
        args.study,
        args.assign,
        knobs_allowed="tune searches the knobs; --set takes study "
        "settings here (e.g. workload.num_requests=16)",
    )
    require_engine(spec)
    if args.gpus:
        return _tune_gpus(args, spec)
    import optuna
    from tqdm.auto import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial says it better
    target = args.n_trials if args.n_trials is not None else spec.budget.n_trials
    print(f"study {spec.name!r}: engine {spec.engine}, model {spec.model_source}")
    print(f"  Optuna storage {redact(storage(args))}, MLflow {redact(tracking(args))}")
    bar = tqdm(total=target, desc=spec.name, unit="trial")

    from workbench.study import TrialRecord

    def on_trial(t: Any) -> None:
        bar.write(_trial_line(spec, t))
        if t.state.name in ("COMPLETE", "PRUNED") and not TrialRecord.read(t).is_duplicate:
            bar.update(1)  # the budget counts distinct measured configurations

    try:
        rep = _run(
            spec,
            args,
            on_trial,
            timeout=args.timeout or spec.budget.timeout_s,
            rerun_duplicates=args.rerun_duplicates,
        )
    finally:
        bar.close()
    _print_outcome(args, spec, rep, target)
    return EXIT_FAILED if rep.interrupted else EXIT_OK


def _print_outcome(args: argparse.Namespace, spec: Any, rep: Any, target: int) -> None:
    from workbench.format import format_best
    from workbench.study import best_trials, trial_rows

    if not rep.ran and not rep.interrupted:
        if target == 0:
            print(
                f"study {spec.name!r} is registered with its definition: "
                f"start workers with `workbench worker {spec.name}`"
            )
        else:
            print(
                f"the study already holds {target} finished trials: nothing to run (raise --n-trials to go on)"
            )
    for note in getattr(rep, "notes", []):
        print(f"note: {note}")
    if rep.interrupted:
        print("interrupted: the running trial was recorded as failed; run the same command again to resume")
    names = rep.study.user_attrs.get("objectives", [])
    print(format_best(names, best_trials(rep.study), trial_rows(rep.study)))
    _print_next_steps(args, spec)


def _print_next_steps(args: argparse.Namespace, spec: Any) -> None:
    """The commands that show this study, with the flags this run was given (the environment and the
    project default resolve the same way again)."""
    st = f" --storage '{args.storage}'" if args.storage else ""
    tu = f" --tracking-uri '{args.tracking_uri}'" if args.tracking_uri else ""
    wb = self_command()
    print("\nsee it in the web UIs:")
    print(f"  {wb} dashboard {args.study}{st}   # optuna-dashboard")
    if tracking(args).lower() in ("none", "off"):
        from workbench import settings

        print(
            f"  MLflow is off for this run: copy the storage and {settings.workbench_home()} to a machine that "
            f"reaches MLflow, then `{wb} import {spec.name} --from STORAGE_URL --results HOME_COPY`"
        )
    else:
        print(f"  {wb} ui {args.study}{tu}   # MLflow UI, runs of this study")


def _tune_gpus(args: argparse.Namespace, spec: Any) -> int:
    from workbench.format import format_best
    from workbench.study import best_trials, load_study, open_study, scaleout, trial_rows

    url = storage(args)
    try:
        gpus = scaleout.parse_gpus(args.gpus)
    except ValueError as e:
        raise input_error(e) from None
    if len(gpus) > 1 and scaleout.is_sqlite(url):
        print(scaleout.SQLITE_SHARED_WARNING.format(n=len(gpus), url=url), file=sys.stderr)
    open_study(spec, url)  # created once here (with its definition), then joined by every worker
    print(f"study {spec.name!r}: {len(gpus)} workers, GPUs {', '.join(gpus)}", flush=True)
    rc = scaleout.launch(spec.name, gpus, url, tracking(args), args.n_trials)
    study = load_study(spec.name, url)
    print(format_best(study.user_attrs.get("objectives", []), best_trials(study), trial_rows(study)))
    return EXIT_OK if rc == 0 else EXIT_FAILED


def worker(args: argparse.Namespace) -> int:
    import os

    import optuna

    from workbench.study import scaleout

    if is_study_file(args.study):
        from workbench.spec import load_spec

        spec = load_spec(args.study)
    else:
        _, spec = study_and_spec(args)
    require_engine(spec)
    if scaleout.is_sqlite(storage(args)):
        print(scaleout.SQLITE_SHARED_WARNING.format(n="several", url=storage(args)), file=sys.stderr)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    me = scaleout.worker_identity()
    who = me["worker_id"] or f"{me['host']}:{me['pid']}"
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    print(f"worker {who} (CUDA_VISIBLE_DEVICES={gpus}) on study {spec.name!r}", flush=True)

    def on_trial(t: Any) -> None:
        print(_trial_line(spec, t, role=False), flush=True)

    rep = _run(spec, args, on_trial, timeout=args.timeout)
    print(
        f"worker {who}: ran {len(rep.ran)} trials; the study's budget is reached"
        + (" (interrupted)" if rep.interrupted else "")
    )
    return EXIT_FAILED if rep.interrupted else EXIT_OK
