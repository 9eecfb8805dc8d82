"""Tool commands: `make-tiny-model`, `make-shape-tokenizer`, `import` (a study run elsewhere) and `doctor` (can each engine run)."""

from __future__ import annotations

import argparse

from workbench.cli.common import EXIT_FAILED, EXIT_OK, UsageError, input_error, storage, tracking


def tiny(args: argparse.Namespace) -> int:
    from workbench.tiny_model import make_tiny_model

    out = make_tiny_model(args.dir, seed=args.seed)
    print(f"wrote a tiny random-weight Llama model and tokenizer to {out}")
    return EXIT_OK


def shape_tokenizer(args: argparse.Namespace) -> int:
    from workbench.tiny_model import make_shape_tokenizer

    try:
        out = make_shape_tokenizer(args.shape, args.dir)
    except (OSError, KeyError, ValueError) as e:
        raise UsageError(f"{args.shape}: cannot make a tokenizer from its config.json: {e}") from None
    print(f"wrote a word-level tokenizer covering every token id of {args.shape} to {out}")
    return EXIT_OK


def import_(args: argparse.Namespace) -> int:
    from workbench.transfer import TransferError, import_study

    url = storage(args)
    try:
        study = import_study(args.study, args.source, args.results, url, tracking(args))
    except (TransferError, KeyError) as e:
        raise input_error(e) from None
    from workbench.study import TrialRecord

    n_runs = sum(1 for t in study.trials if TrialRecord.read(t).mlflow_run_id)
    print(
        f"imported study {args.study!r}: {len(study.trials)} trials into {url}, {n_runs} with an MLflow run"
    )
    return EXIT_OK


def doctor(args: argparse.Namespace) -> int:
    """0 when the study (if given) can run where its runtime says; 1 when it cannot."""
    import json

    from workbench.doctor import diagnose, format_report

    spec = None
    if args.study:
        from workbench.spec import load_spec

        spec = load_spec(args.study)
    report = diagnose(spec)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_FAILED if spec is not None and not report["study"]["ok"] else EXIT_OK
