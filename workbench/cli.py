"""Command line: `workbench trial`, `workbench make-tiny-model`, `workbench validate`, `workbench engines`.

Only the standard library is imported at start so `workbench --help` answers at once; each
command imports what it needs.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFEASIBLE = 0, 1, 2, 3


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
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    from workbench.spec import SpecError

    try:
        return {"trial": _trial, "make-tiny-model": _tiny, "validate": _validate, "engines": _engines}[
            args.command
        ](args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _load(path: str, assign: list[str]) -> tuple[Any, dict[str, Any]]:
    from workbench.spec import load_spec, parse_knob_assignments

    spec = load_spec(path)
    knobs, overrides = parse_knob_assignments(spec, assign)
    if overrides:
        spec = load_spec(path, overrides)
    return spec, knobs


def _trial(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.trial import run_trial

    spec, knobs = _load(args.study, args.assign)
    res = run_trial(spec, knobs, out_dir=Path(args.out) if args.out else None)
    if args.json:
        import json

        print(json.dumps(res.dump(), indent=2))
    else:
        print(format_summary(res))
    return {"COMPLETE": EXIT_OK, "INFEASIBLE": EXIT_INFEASIBLE}.get(res.status, EXIT_FAILED)


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
                "build",
                f"key {res.build.get('build_key') or '-'}, "
                f"{'cache hit' if res.build.get('cache_hit') else f('build_s', ' s')}",
            ),
        ]
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
        print(f"  {name:<20} {kind:<10} {desc}")
    return EXIT_OK


def _engines(args: argparse.Namespace) -> int:
    from workbench.engines import engine_names, get_engine_class

    for name in engine_names():
        cls = get_engine_class(name)
        print(f"{name}  ({cls.__module__}.{cls.__name__})")
        for k in cls.knobs.values():
            print(
                f"  {k.name:<20} {'build-time' if k.build_time else 'runtime':<10} default {k.default!s:<8} "
                f"{k.allowed()}  - {k.help}"
            )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
