"""Command line: `workbench trial`, `workbench make-tiny-model`, `workbench validate`, `workbench engines`.

Only the standard library is imported at start so `workbench --help` answers at once; each
command imports what it needs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3
# repeated here (not imported) so that `--help` imports nothing heavy
DEFAULT_STORAGE = "sqlite:///studies/optuna.db"
DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Tune LLM inference engines (TensorRT-LLM, transformers) with real builds and benchmarks.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("trial", help="run one trial of a study and print its metrics")
    t.add_argument("study", help="study definition (YAML), e.g. studies/quickstart.yaml")
    t.add_argument(
        "--set",
        dest="assign",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a knob value (max_batch_size=8) or a study setting (workload.num_requests=16); repeatable",
    )
    t.add_argument("--out", help="folder for plan.json, result.json and worker.log")
    t.add_argument("--json", action="store_true", help="print the result JSON instead of the table")

    m = sub.add_parser("make-tiny-model", help="write a tiny random-weight Llama model and tokenizer")
    m.add_argument("dir")
    m.add_argument("--seed", type=int, default=0)

    v = sub.add_parser("validate", help="check a study definition and show its resolved search space")
    v.add_argument("study")

    sub.add_parser("engines", help="list the engines and their knobs")

    tu = sub.add_parser("tune", help="create or resume a study and run trials until its budget is reached")
    tu.add_argument("study", help="study definition (YAML)")
    tu.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    tu.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI}); none: no MLflow, `import` the study later",
    )
    tu.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="finished trials the study should hold (default: budget.n_trials of the study file)",
    )
    tu.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
    tu.add_argument(
        "--rerun-duplicates",
        action="store_true",
        help="measure knob values again even when a finished trial already measured them",
    )
    tu.add_argument(
        "--set",
        dest="assign",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a study setting for this run, e.g. workload.num_requests=16",
    )
    tu.add_argument(
        "--gpus",
        default=None,
        metavar="0,1,...",
        help="one worker process per GPU (CUDA_VISIBLE_DEVICES), all on this study (docs/scale-out.md)",
    )

    wk = sub.add_parser(
        "worker", help="join a study (from any machine) and run its trials until the budget is reached"
    )
    wk.add_argument("study", help="study name (its stored definition is used) or study definition (YAML)")
    wk.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    wk.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI}); none: no MLflow, `import` the study later",
    )
    wk.add_argument("--n-trials", type=int, default=None, help="finished trials the study should hold")
    wk.add_argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")

    for name, text in (
        ("status", "a table of the study's trials"),
        ("best", "the best trial, or the Pareto set"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("study", help="study name or study definition (YAML)")
        c.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
        c.add_argument("--json", action="store_true", help="print JSON")

    e = sub.add_parser(
        "export", help="write a trial's deployable configuration (options YAML, build command, README)"
    )
    e.add_argument("study", help="study name or study definition (YAML)")
    e.add_argument("--trial", type=int, default=None, help="trial number (default: the best trial)")
    e.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    e.add_argument("--out", default=None, help="output folder (default exports/STUDY-trialN)")

    x = sub.add_parser(
        "crosscheck", help="run trtllm-bench on a trial's configuration and log its report beside ours"
    )
    x.add_argument("study", help="study name or study definition (YAML)")
    x.add_argument("--trial", type=int, required=True, help="trial number")
    x.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    x.add_argument(
        "--tracking-uri", default=None, help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI})"
    )
    x.add_argument(
        "--engine",
        choices=("bench", "workbench"),
        default="bench",
        help="bench: trtllm-bench builds the engine (when its flags can express it); workbench: the trial's own",
    )
    x.add_argument("--out", default=None, help="work folder (default .workbench/crosscheck/STUDY-trialN)")

    g = sub.add_parser(
        "grid", help="measure every combination of the study's knob choices into a grid file (for replay)"
    )
    g.add_argument(
        "study", help="study definition (YAML); its search space must be choices or stepped ranges"
    )
    g.add_argument("--out", required=True, help="grid file (JSON Lines); an existing one is resumed")
    g.add_argument(
        "--reuse-model",
        action="store_true",
        help="measure in this process, loading each model once (fast on GPUs; a crash ends the recording)",
    )
    g.add_argument("--time-budget", type=float, default=None, help="seconds after which no new point starts")
    g.add_argument("--set", dest="assign", action="append", default=[], metavar="KEY=VALUE",
                   help="a study setting for this recording, e.g. workload.num_requests=64")  # fmt: skip

    im = sub.add_parser(
        "import",
        help="copy a study run elsewhere (e.g. with --tracking-uri none) into this storage and MLflow",
    )
    im.add_argument("study", help="study name")
    im.add_argument("--from", dest="source", required=True, help="the Optuna storage URL it ran with")
    im.add_argument(
        "--results", required=True, help="the WORKBENCH_HOME folder it ran with (its trial folders)"
    )
    im.add_argument("--storage", default=None, help=f"Optuna storage URL here (default {DEFAULT_STORAGE})")
    im.add_argument(
        "--tracking-uri", default=None, help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI})"
    )

    r = sub.add_parser("report", help="write the study's self-contained HTML report and attach it to MLflow")
    r.add_argument("study", help="study name or study definition (YAML)")
    r.add_argument("--storage", default=None, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    r.add_argument(
        "--tracking-uri", default=None, help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI})"
    )
    r.add_argument("--out", default=None, help="HTML file (default reports/STUDY.html)")

    lab = sub.add_parser("lab", help="JupyterLab on the notebooks (127.0.0.1), this environment as kernel")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--host", default="127.0.0.1")

    d = sub.add_parser("dashboard", help="optuna-dashboard on the study (bound to 127.0.0.1)")
    d.add_argument("study", help="study name or study definition (YAML)")
    d.add_argument("--storage", default=None)
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8080)

    u = sub.add_parser("ui", help="the MLflow UI on a study's runs (bound to 127.0.0.1)")
    u.add_argument("study", nargs="?", help="study name or definition; opens its runs page")
    u.add_argument("--tracking-uri", default=None)
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=5000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    from workbench.spec import SpecError

    commands = {
        "trial": _trial,
        "make-tiny-model": _tiny,
        "validate": _validate,
        "engines": _engines,
        "tune": _tune,
        "status": _status,
        "best": _best,
        "dashboard": _dashboard,
        "ui": _ui,
        "export": _export,
        "worker": _worker,
        "report": _report,
        "lab": _lab,
        "crosscheck": _crosscheck,
        "grid": _grid,
        "import": _import,
    }
    try:
        return commands[args.command](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


class UsageError(Exception):
    pass


def _load(path: str, assign: list[str]) -> tuple[Any, dict[str, Any]]:
    from workbench.spec import load_spec, parse_knob_assignments

    spec = load_spec(path)
    knobs, overrides = parse_knob_assignments(spec, assign)
    if overrides:
        spec = load_spec(path, overrides)
    return spec, knobs


def _require_engine(spec: Any) -> None:
    """Stop before any trial when the engine's package is missing (every trial would fail the same way)."""
    from workbench.engines import get_engine_class

    why = get_engine_class(spec.engine).check_available()
    if why:
        raise UsageError(why)


def _trial(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.trials.run import run_trial

    spec, knobs = _load(args.study, args.assign)
    _require_engine(spec)
    res = run_trial(spec, knobs, out_dir=Path(args.out) if args.out else None)
    if args.json:
        import json

        print(json.dumps(res.dump(), indent=2))
    else:
        print(format_summary(res))
    return {"COMPLETE": EXIT_OK, "INFEASIBLE": EXIT_INFEASIBLE}.get(res.status, EXIT_FAILED)


def _grid(args: argparse.Namespace) -> int:
    import shlex

    from workbench.grid import GridError, record
    from workbench.study import StudyMismatch

    spec, knobs = _load(args.study, args.assign)
    if knobs:
        raise UsageError(
            f"grid measures the study's whole search space; --set takes study settings, not knobs ({', '.join(knobs)})"
        )
    _require_engine(spec)
    try:
        grid = record(spec, args.out, reuse_model=args.reuse_model, budget_s=args.time_budget,
                      command="workbench " + " ".join(map(shlex.quote, sys.argv[1:])))  # fmt: skip
    except (GridError, StudyMismatch) as e:
        raise UsageError(str(e)) from None
    done = sum(p["status"] == "COMPLETE" for p in grid.points)
    print(f"grid {args.out}: {len(grid.points)} of {grid.size()} points recorded ({done} complete)")
    return EXIT_OK if len(grid.points) == grid.size() else EXIT_FAILED


def _import(args: argparse.Namespace) -> int:
    from workbench.transfer import ImportError_, import_study

    storage = args.storage or DEFAULT_STORAGE
    try:
        study = import_study(args.study, args.source, args.results, storage, args.tracking_uri)
    except (ImportError_, KeyError) as e:
        raise UsageError(str(e).strip("'\"")) from None
    n_runs = sum(1 for t in study.trials if t.user_attrs.get("mlflow_run_id"))
    print(
        f"imported study {args.study!r}: {len(study.trials)} trials into {storage}, {n_runs} with an MLflow run"
    )
    return EXIT_OK


def format_summary(res: Any) -> str:
    """A readable table of one trial result."""
    rows: list[tuple[str, str]] = [
        ("study", res.study),
        ("trial", res.trial_id),
        ("engine", res.engine),
        ("model", res.model),
        ("status", res.status),
    ]
    if res.failure:
        rows.append(("failure", f"{res.failure.kind}: {res.failure.message}"))
    rows += [(f"knob {k}", str(v)) for k, v in res.knobs.items()]
    m = res.metrics

    def f(key: str, unit: str = "", digits: int = 1) -> str:
        v = m.get(key)
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{digits}f}{unit}"

    if res.status == "COMPLETE":
        cv = m.get("output_tok_s_cv")
        rep = res.bench["repeats"]["n"] if res.bench else 1
        rows += [
            (
                "output throughput",
                f("output_tok_s", " tok/s") + (f"  (mean of {rep}, CV {cv:.1%})" if rep > 1 else ""),
            ),
            ("total throughput", f("total_tok_s", " tok/s")),
            ("request throughput", f("request_per_s", " req/s", 2)),
            ("per-user output", f("per_user_output_tok_s", " tok/s/user")),
            ("TTFT p50 / p95", f"{f('ttft_ms_p50', ' ms')} / {f('ttft_ms_p95', ' ms')}"),
            ("TPOT p50 / p95", f"{f('tpot_ms_p50', ' ms', 2)} / {f('tpot_ms_p95', ' ms', 2)}"),
            ("ITL p50 / p99", f"{f('itl_ms_p50', ' ms', 2)} / {f('itl_ms_p99', ' ms', 2)}"),
            ("E2E latency p50 / p95", f"{f('e2e_ms_p50', ' ms')} / {f('e2e_ms_p95', ' ms')}"),
            (
                "peak memory above baseline",
                f("peak_memory_gb", " GB", 3) + (f"  ({res.bench['memory']['source']})" if res.bench else ""),
            ),
            ("KV cache capacity", f("kv_cache_tokens", " tokens", 0)),
            (
                "roofline (estimate)",
                f"{_pct(m.get('roofline_fraction'))} of the decode bound {f('roofline_output_tok_s', ' tok/s', 0)}"
                f" at {f('memory_bandwidth_gb_s', ' GB/s', 0)}; decode steps {_pct(m.get('roofline_decode_fraction'))}"
                if "roofline_fraction" in m
                else "-",
            ),
            (
                "build",
                f"key {res.build.get('build_key') or '-'}, "
                f"{'cache hit' if res.build.get('cache_hit') else f('build_s', ' s')}",
            ),
        ]
    if res.status == "COMPLETE" and "gsm8k_score" in m:
        acc = res.accuracy or {}
        how = (
            f"reused from trial {acc['reused_from_trial']}"
            if acc.get("reused_from_trial") is not None
            else f"n={int(m['gsm8k_n'])}"
        )
        rows.append(
            (
                "GSM8K strict / flexible",
                f"{m['gsm8k_strict']:.3f} / {m['gsm8k_flexible']:.3f}  (score {m['gsm8k_score']:.2f}, {how})",
            )
        )
        gate = acc.get("gate")
        if gate:
            rows.append(
                (
                    "accuracy gate",
                    f"{gate['decision']}: threshold {gate['threshold']:.2f} "
                    f"(baseline {gate['baseline']:.2f} - {gate.get('max_drop', 0):g}, alpha {gate['alpha']:g})",
                )
            )
    rows.append(("result", res.files.get("result", "")))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _tiny(args: argparse.Namespace) -> int:
    from workbench.tiny_model import make_tiny_model

    out = make_tiny_model(args.dir, seed=args.seed)
    print(f"wrote a tiny random-weight Llama model and tokenizer to {out}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from workbench.spec import Choices, Range, load_spec

    spec = load_spec(args.study)
    defs = spec.engine_knobs()
    print(f"{args.study}: valid study {spec.name!r} (engine {spec.engine}, model {spec.model_source})")
    for name, entry in spec.search_space.items():
        kind = "build-time" if defs[name].build_time else "runtime"
        if isinstance(entry, Choices):
            desc = "choices " + ", ".join(map(str, entry.choices))
        elif isinstance(entry, Range):
            desc = (
                f"range {entry.low:g}..{entry.high:g}"
                + (" (log)" if entry.log else "")
                + (f" step {entry.step:g}" if entry.step else "")
            )
        else:
            desc = f"fixed {entry}"
        print(f"  {name:<24} {kind:<10} {desc}")
    return EXIT_OK


def _engines(args: argparse.Namespace) -> int:
    from workbench.engines import engine_names, get_engine_class

    for name in engine_names():
        cls = get_engine_class(name)
        print(f"{name}  ({cls.__module__}.{cls.__name__})")
        why = cls.check_available()
        if why:
            print(f"  (not available here: {why})")
        for k in cls.knobs.values():
            print(
                f"  {k.name:<24} {'build-time' if k.build_time else 'runtime':<10} default {k.default!s:<8} "
                f"{k.allowed()}  - {k.help}"
            )
        if cls.options_model is not None:
            print("  engine_options:")
            for name, f in cls.options_model.model_fields.items():
                print(f"    {name:<22} default {f.default!s:<14} {f.description or ''}")
    return EXIT_OK


# ------------------------------------------------------------------------------ export, crosscheck
def _study_and_spec(args: argparse.Namespace) -> tuple[Any, Any]:
    """The Optuna study and its definition: from the YAML when given, else the one stored in the study."""
    from workbench.spec import load_spec
    from workbench.study import stored_spec

    study = _open(args)
    if args.study.endswith((".yaml", ".yml")):
        return study, load_spec(args.study)
    try:
        return study, stored_spec(study)
    except KeyError as e:
        raise UsageError(str(e).strip("'\"")) from None


def _trial_of(study: Any, number: int | None) -> Any:
    from workbench.study import pick_trial

    try:
        return pick_trial(study, number)
    except KeyError as e:
        raise UsageError(str(e).strip("'\"")) from None


def _report(args: argparse.Namespace) -> int:
    from workbench.report import write_report

    study = _open(args)
    out = write_report(
        study, Path(args.out) if args.out else None, tracking_uri=args.tracking_uri or DEFAULT_TRACKING_URI
    )
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained) and attached it to the study's MLflow run"
    )
    return EXIT_OK


def _lab(args: argparse.Namespace) -> int:
    import os
    import shutil

    root = Path(__file__).resolve().parent.parent
    exe = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or str(
        Path(sys.executable).parent / "jupyter-lab"
    )
    print(
        f"JupyterLab on http://{args.host}:{args.port}/lab (notebooks in {root / 'notebooks'}; kernel: {sys.executable})"
    )
    os.execv(
        exe,
        [
            exe,
            "--ip",
            args.host,
            "--port",
            str(args.port),
            "--no-browser",
            f"--ServerApp.root_dir={root / 'notebooks'}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from workbench.export import export_trial

    study, spec = _study_and_spec(args)
    t = _trial_of(study, args.trial)
    out = Path(args.out or f"exports/{spec.name}-trial{t.number}")
    files = export_trial(study, t.number, out, spec=spec)
    which = "the best trial" if args.trial is None else "trial"
    print(f"exported {which} {t.number} of {spec.name!r} to {out}/:")
    for f in files:
        print(f"  {f.name}")
    return EXIT_OK


def _crosscheck(args: argparse.Namespace) -> int:
    import json

    from workbench.engines.trtllm import crosscheck

    study, spec = _study_and_spec(args)
    if spec.engine != "trtllm":
        raise UsageError(
            f"crosscheck runs trtllm-bench, for trtllm studies; {spec.name!r} uses engine {spec.engine!r}"
        )
    _require_engine(spec)
    t = _trial_of(study, args.trial)
    own = None
    rp = t.user_attrs.get("result_path")
    if args.engine == "workbench" or crosscheck.T.bench_build_unsupported(t.user_attrs.get("knobs", {})):
        art = (
            json.loads(Path(rp).read_text()).get("build", {}).get("artifact_path")
            if rp and Path(rp).exists()
            else None
        )
        own = Path(art) / "engine" if art else None
    work = Path(args.out or f".workbench/crosscheck/{spec.name}-trial{t.number}")
    try:
        comp = crosscheck.run(
            spec,
            t.number,
            t.user_attrs.get("knobs", t.params),
            t.user_attrs.get("metrics", {}),
            work,
            own_engine=own,
            run_id=t.user_attrs.get("mlflow_run_id"),
            tracking_uri=args.tracking_uri,
        )
    except crosscheck.CrosscheckError as e:
        raise UsageError(str(e)) from None
    print(crosscheck.format_comparison(comp))
    print(
        f"engine: {comp['engine_source']} ({comp['note']}); files in {work}/, logged to the trial's MLflow run"
    )
    return EXIT_OK


# -------------------------------------------------------------------------------------------- studies
def _tune(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from workbench.spec import load_spec, parse_knob_assignments
    from workbench.study import StudyMismatch, best_trials, redact, trial_rows, tune

    spec = load_spec(args.study)
    knobs, overrides = parse_knob_assignments(spec, args.assign)
    if knobs:
        raise UsageError(
            "tune searches the knobs; --set takes study settings here (e.g. workload.num_requests=16)"
        )
    if overrides:
        spec = load_spec(args.study, overrides)
    _require_engine(spec)
    storage = args.storage or DEFAULT_STORAGE
    if args.gpus:
        return _tune_gpus(args, spec, storage)
    target = args.n_trials if args.n_trials is not None else spec.budget.n_trials
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial says it better
    print(f"study {spec.name!r}: engine {spec.engine}, model {spec.model_source}")
    print(f"  Optuna storage {redact(storage)}, MLflow {redact(args.tracking_uri or DEFAULT_TRACKING_URI)}")
    bar = tqdm(total=target, desc=spec.name, unit="trial")

    def on_trial(t: Any) -> None:
        m = t.user_attrs.get("metrics", {})
        what = t.user_attrs.get("failure") or ", ".join(
            f"{o.metric}={m.get(o.metric, float('nan')):.4g}" for o in spec.objectives
        )
        tag = (
            " (baseline)"
            if t.user_attrs.get("baseline")
            else (
                f" (same knobs as trial {t.user_attrs['duplicate_of']})"
                if "duplicate_of" in t.user_attrs
                else ""
            )
        )
        bar.write(f"trial {t.number}{tag}: {t.state.name} {what}")
        if t.state.name in ("COMPLETE", "PRUNED"):
            bar.update(1)

    try:
        rep = tune(
            spec,
            storage=storage,
            tracking_uri=args.tracking_uri,
            n_trials=args.n_trials,
            timeout=args.timeout or spec.budget.timeout_s,
            rerun_duplicates=args.rerun_duplicates,
            on_trial=on_trial,
        )
    except StudyMismatch as e:
        raise UsageError(str(e)) from None
    finally:
        bar.close()
    if not rep.ran and not rep.interrupted:
        if target == 0:
            print(
                f"study {spec.name!r} is registered with its definition: start workers with `workbench worker {spec.name}`"
            )
        else:
            print(
                f"the study already holds {target} finished trials: nothing to run (raise --n-trials to go on)"
            )
    if rep.interrupted:
        print("interrupted: the running trial was recorded as failed; run the same command again to resume")
    print(_format_best(rep.study, best_trials(rep.study), trial_rows(rep.study), spec.objectives))
    st = "" if storage == DEFAULT_STORAGE else f" --storage '{storage}'"
    tu = "" if not args.tracking_uri else f" --tracking-uri '{args.tracking_uri}'"
    print("\nsee it in the web UIs:")
    wb = _self_command()
    print(f"  {wb} dashboard {args.study}{st}   # optuna-dashboard")
    if (args.tracking_uri or "").lower() in ("none", "off"):
        from workbench.trials.run import workbench_home

        print(f"  MLflow is off for this run: copy the storage and {workbench_home()} to a machine that reaches "
              f"MLflow, then `{wb} import {spec.name} --from STORAGE_URL --results HOME_COPY`")  # fmt: skip
    else:
        print(f"  {wb} ui {args.study}{tu}   # MLflow UI, runs of this study")
    return EXIT_FAILED if rep.interrupted else EXIT_OK


def _tune_gpus(args: argparse.Namespace, spec: Any, storage: str) -> int:
    from workbench.study import open_study, scaleout

    try:
        gpus = scaleout.parse_gpus(args.gpus)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(gpus) > 1 and scaleout.is_sqlite(storage):
        print(scaleout.SQLITE_SHARED_WARNING.format(n=len(gpus), url=storage), file=sys.stderr)
    open_study(spec, storage)  # created once here (with its definition), then joined by every worker
    print(f"study {spec.name!r}: {len(gpus)} workers, GPUs {', '.join(gpus)}", flush=True)
    rc = scaleout.launch(spec.name, gpus, storage, args.tracking_uri, args.n_trials)
    from workbench.study import best_trials, load_study, trial_rows

    study = load_study(spec.name, storage)
    print(_format_best(study, best_trials(study), trial_rows(study), spec.objectives))
    return EXIT_OK if rc == 0 else EXIT_FAILED


def _worker(args: argparse.Namespace) -> int:
    import os

    import optuna

    from workbench.study import StudyMismatch, scaleout, tune

    storage = args.storage or DEFAULT_STORAGE
    if args.study.endswith((".yaml", ".yml")):
        from workbench.spec import load_spec

        spec = load_spec(args.study)
    else:
        _, spec = _study_and_spec(args)
    _require_engine(spec)
    if scaleout.is_sqlite(storage):
        print(scaleout.SQLITE_SHARED_WARNING.format(n="several", url=storage), file=sys.stderr)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    me = scaleout.worker_identity()
    who = me["worker_id"] or f"{me['host']}:{me['pid']}"
    print(
        f"worker {who} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}) on study {spec.name!r}",
        flush=True,
    )

    def on_trial(t: Any) -> None:
        m = t.user_attrs.get("metrics", {})
        what = t.user_attrs.get("failure") or ", ".join(
            f"{o.metric}={m.get(o.metric, float('nan')):.4g}" for o in spec.objectives
        )
        print(f"trial {t.number}: {t.state.name} {what}", flush=True)

    try:
        rep = tune(spec, storage=storage, tracking_uri=args.tracking_uri, n_trials=args.n_trials,
                   timeout=args.timeout, on_trial=on_trial)  # fmt: skip
    except StudyMismatch as e:
        raise UsageError(str(e)) from None
    print(
        f"worker {who}: ran {len(rep.ran)} trials; the study's budget is reached"
        + (" (interrupted)" if rep.interrupted else "")
    )
    return EXIT_FAILED if rep.interrupted else EXIT_OK


def _self_command() -> str:
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


def _study_name(arg: str) -> str:
    from pathlib import Path

    if arg.endswith((".yaml", ".yml")) and Path(arg).exists():
        from workbench.spec import load_spec

        return load_spec(arg).name
    return arg


def _open(args: argparse.Namespace) -> Any:
    import optuna

    from workbench.study import load_study

    try:
        return load_study(_study_name(args.study), args.storage or DEFAULT_STORAGE)
    except KeyError:
        raise UsageError(
            f"no study named {_study_name(args.study)!r} in {args.storage or DEFAULT_STORAGE}"
        ) from None
    except optuna.exceptions.StorageInternalError as e:
        raise UsageError(str(e)) from None


def _status(args: argparse.Namespace) -> int:
    from workbench.study import trial_rows

    study = _open(args)
    rows = trial_rows(study)
    if args.json:
        import json

        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    names = study.user_attrs.get("objectives", [])
    knob_names = sorted(
        {
            k
            for r in rows
            for k in (r["knobs"] or {})
            if k in {"max_batch_size", "kv_cache_fraction", "max_num_tokens", "quantization"}
        }
    )
    extra = [
        k
        for k in ("ttft_ms_p95", "peak_memory_gb", "gsm8k_score", "roofline_fraction")
        if k not in names and any(k in r["metrics"] for r in rows)
    ]
    labels = {"roofline_fraction": "roofline (est.)"}
    head = ["#", "state", *knob_names, *names, *[labels.get(k, k) for k in extra], "x base", "note"]
    table = []
    for r in rows:
        m = r["metrics"]
        note = "baseline" if r["baseline"] else ""
        if r["failure"]:
            note = f"{r['failure_kind']}: {r['failure']}"[:70]
        elif r["duplicate_of"] is not None:
            note = f"= trial {r['duplicate_of']}"
        elif r["feasible"] is False:
            note = (note + " infeasible (constraint)").strip()
        table.append(
            [
                str(r["number"]),
                r["state"],
                *[_fmt(r["knobs"].get(k)) for k in knob_names],
                *[_fmt(m.get(n)) for n in names],
                *[_pct(m.get(k)) if k == "roofline_fraction" else _fmt(m.get(k)) for k in extra],
                _fmt(r.get("vs_baseline")),
                note,
            ]
        )
    print(_table(head, table))
    if "roofline_fraction" in extra:
        bws = sorted({round(r["metrics"]["memory_bandwidth_gb_s"]) for r in rows
                      if r["metrics"].get("memory_bandwidth_gb_s")})  # fmt: skip
        if bws:
            print(
                "roofline (est.): output tok/s over the decode-phase bound = batch x bandwidth / (weights at "
                "their quantized size + KV cache read per step); bandwidth "
                + (f"{bws[0]:,} GB/s" if bws[0] == bws[-1] else f"{bws[0]:,}-{bws[-1]:,} GB/s")
                + " (measured by a device copy in each trial, or the data sheet)"
            )
    return EXIT_OK


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _best(args: argparse.Namespace) -> int:
    from workbench.study import best_trials, trial_rows

    study = _open(args)
    best = best_trials(study)
    if args.json:
        import json

        print(
            json.dumps(
                [
                    {
                        "number": t.number,
                        "values": t.values,
                        "knobs": t.user_attrs.get("knobs"),
                        "metrics": t.user_attrs.get("metrics"),
                        "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
                    }
                    for t in best
                ],
                indent=2,
            )
        )
        return EXIT_OK if best else EXIT_FAILED
    print(_format_best(study, best, trial_rows(study), None))
    return EXIT_OK if best else EXIT_FAILED


def _format_best(study: Any, best: list[Any], rows: list[dict[str, Any]], objectives: Any) -> str:
    if not best:
        return "no feasible completed trial yet"
    by_num = {r["number"]: r for r in rows}
    title = (
        "best configuration" if len(best) == 1 else f"Pareto set under the constraints ({len(best)} trials)"
    )
    lines = [title + ":"]
    names = study.user_attrs.get("objectives", [])
    for t in best:
        r = by_num[t.number]
        vals = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, t.values, strict=False))
        ratio = f" ({r['vs_baseline']:.2f}x the baseline's output_tok_s)" if r.get("vs_baseline") else ""
        lines.append(f"  trial {t.number}: {vals}{ratio}")
        lines.append("    " + ", ".join(f"{k}={v}" for k, v in (r["knobs"] or {}).items()))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _dashboard(args: argparse.Namespace) -> int:
    import os
    import shutil

    study = _open(args)
    storage = args.storage or DEFAULT_STORAGE
    url = f"http://{args.host}:{args.port}/dashboard/studies/{study._study_id}"
    print(f"optuna-dashboard for study {study.study_name!r}: {url}  (Ctrl-C to stop)", flush=True)
    exe = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    os.execv(exe, [exe, storage, "--host", args.host, "--port", str(args.port)])  # signals go straight to it
    return EXIT_OK


def _ui(args: argparse.Namespace) -> int:
    import os

    uri = args.tracking_uri or DEFAULT_TRACKING_URI
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    page = f"http://{args.host}:{args.port}/"
    if args.study:
        from mlflow import MlflowClient

        exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(_study_name(args.study))
        if exp is None:
            raise UsageError(f"no MLflow experiment named {_study_name(args.study)!r} at {uri}")
        page += f"#/experiments/{exp.experiment_id}/runs"
    print(f"MLflow UI: {page}  (Ctrl-C to stop)", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
