"""Commands on one study file without a stored study: `trial`, `grid`, `validate`, `engines`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.cli.common import EXIT_FAILED, EXIT_INFEASIBLE, EXIT_OK, load, require_engine


def trial(args: argparse.Namespace) -> int:
    from workbench.format import format_summary
    from workbench.trials.orchestrator.run import run_trial

    spec, knobs = load(args.study, args.assign)
    require_engine(spec)
    res = run_trial(spec, knobs, out_dir=Path(args.out) if args.out else None)
    if args.json:
        import json

        print(json.dumps(res.dump(), indent=2))
    else:
        print(format_summary(res))
    return {"COMPLETE": EXIT_OK, "INFEASIBLE": EXIT_INFEASIBLE}.get(res.status, EXIT_FAILED)


def grid(args: argparse.Namespace) -> int:
    import shlex

    from workbench.cli.common import input_error
    from workbench.grid import GridError, record

    spec, _ = load(
        args.study,
        args.assign,
        knobs_allowed="grid measures the study's whole search space; "
        "--set takes study settings, not knobs ({knobs})",
    )
    require_engine(spec)
    try:
        g = record(
            spec,
            args.out,
            reuse_model=args.reuse_model,
            budget_s=args.time_budget,
            command="workbench " + " ".join(map(shlex.quote, sys.argv[1:])),
        )
    except GridError as e:  # a ValueError; the grid's own InputErrors reach main() directly
        raise input_error(e) from None
    done = sum(p["status"] == "COMPLETE" for p in g.points)
    print(f"grid {args.out}: {len(g.points)} of {g.size()} points recorded ({done} complete)")
    return EXIT_OK if len(g.points) == g.size() else EXIT_FAILED


def validate(args: argparse.Namespace) -> int:
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


def engines(args: argparse.Namespace) -> int:
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
        if cls.options_model.model_fields:
            print("  engine_options:")
            for option, f in cls.options_model.model_fields.items():
                print(f"    {option:<22} default {f.default!s:<14} {f.description or ''}")
    return EXIT_OK
