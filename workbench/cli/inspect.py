"""Commands that read a stored study: `status`, `best`, `report`, `export`, `crosscheck`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workbench import settings
from workbench.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    input_error,
    open_study,
    require_engine,
    study_and_spec,
    tracking,
    trial_of,
)


def status(args: argparse.Namespace) -> int:
    from workbench.format import status_table
    from workbench.study import trial_rows

    study = open_study(args)
    rows = trial_rows(study)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(status_table(rows, study.user_attrs.get("objectives", [])))
    return EXIT_OK


def best(args: argparse.Namespace) -> int:
    from workbench.format import format_best
    from workbench.study import best_trials, trial_rows
    from workbench.study.inspect import best_records

    study = open_study(args)
    trials = best_trials(study)
    if args.json:
        print(json.dumps(best_records(trials), indent=2))
    else:
        print(format_best(study.user_attrs.get("objectives", []), trials, trial_rows(study)))
    return EXIT_OK if trials else EXIT_FAILED


def report(args: argparse.Namespace) -> int:
    from workbench.report import write_report

    out = write_report(open_study(args), Path(args.out) if args.out else None, tracking_uri=tracking(args))
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained) and attached it to the study's MLflow run"
    )
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    from workbench.export import default_out, export_trial

    study, spec = study_and_spec(args)
    t = trial_of(study, args.trial)
    out = Path(args.out) if args.out else default_out(spec.name, t.number)
    files = export_trial(study, t.number, out, spec=spec)
    which = "the best trial" if args.trial is None else "trial"
    print(f"exported {which} {t.number} of {spec.name!r} to {out}/:")
    for f in files:
        print(f"  {f.name}")
    return EXIT_OK


def crosscheck(args: argparse.Namespace) -> int:
    """The engine's own benchmark on a trial's configuration (its `crosscheck` hook), logged beside ours."""
    from workbench.engines import get_engine_class
    from workbench.engines.base import CrosscheckError
    from workbench.format import format_comparison

    study, spec = study_and_spec(args)
    cls = get_engine_class(spec.engine)
    if cls.crosscheck_tool is None:
        raise UsageError(
            f"crosscheck runs an engine's own benchmark (trtllm-bench for trtllm); "
            f"{spec.name!r} uses engine {spec.engine!r}, which has none"
        )
    require_engine(spec)
    t = trial_of(study, args.trial)
    work = (
        Path(args.out)
        if args.out
        else settings.workbench_home() / "crosscheck" / f"{spec.name}-trial{t.number}"
    )
    try:
        comp = cls.crosscheck(_crosscheck_input(spec, t, work, own=args.engine == "workbench"))
    except CrosscheckError as e:
        raise input_error(e) from None
    from workbench.study import TrialRecord

    run_id = TrialRecord.read(t).mlflow_run_id
    if run_id:
        from workbench.tracking import log_crosscheck

        log_crosscheck(tracking(args), run_id, work, comp)
    print(format_comparison(comp))
    print(f"engine: {comp.engine_source} ({comp.note}); files in {work}/, logged to the trial's MLflow run")
    return EXIT_OK


def _crosscheck_input(spec: Any, t: Any, work: Path, own: bool) -> Any:
    """What the engine's cross-check needs: the trial's knobs, metrics, artifact and the same requests."""
    from transformers import AutoTokenizer

    from workbench.engines.base import CrosscheckInput
    from workbench.study import TrialRecord
    from workbench.trials.workload import measured_requests

    tok = AutoTokenizer.from_pretrained(
        spec.model.tokenizer or spec.model_source,
        revision=spec.model.revision,
        trust_remote_code=spec.model.trust_remote_code,
    )
    w = spec.workload
    # the first repeat's measured requests, as the trial made them (trtllm-bench warms up on its first lines)
    requests = measured_requests(
        w,
        0,
        vocab_size=len(tok),
        tokenizer=tok,
        dataset_path=spec.resolve_path(w.dataset.path) if w.dataset else None,
        special_ids=set(getattr(tok, "all_special_ids", None) or []),
    )
    rec = TrialRecord.read(t)
    rp = rec.result_path
    art = (
        json.loads(Path(rp).read_text()).get("build", {}).get("artifact_path")
        if rp and Path(rp).exists()
        else None
    )
    return CrosscheckInput(
        spec=spec,
        options=spec.options(),
        trial_number=t.number,
        knobs=rec.knobs_or(t.params),
        metrics=rec.metrics,
        work=work,
        requests=requests,
        eos_id=tok.eos_token_id,
        artifact_path=Path(art) if art else None,
        use_own_artifact=own,
        open_context=lambda: _open_context(spec, t, work),
    )


def _open_context(spec: Any, t: Any, work: Path) -> Any:
    """The trial's OpenContext, as its plan made it (device, engine options, CPU KV budget, lengths)."""
    from workbench.study import TrialRecord
    from workbench.trials.orchestrator.environment import detect_device
    from workbench.trials.orchestrator.planning import make_plan

    device = detect_device(str(spec.trial.device or "auto"))
    knobs = TrialRecord.read(t).knobs_or(t.params)
    plan = make_plan(spec, f"crosscheck-{t.number}", knobs, device, work / "cache", work, keyed=False)
    return plan.open_context()
