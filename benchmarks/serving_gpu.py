"""Issue #14's GPU figures as ONE device command (at most ~9 minutes), writing what it has by a deadline.

  1. Llama-3.1-8B's shape (random bf16, load_format dummy) behind `transformers-serve`: TTFT/TPOT
     p50/p95 and output tok/s against concurrency 1...256 in one sweep (one `workbench trial`).
  2. The same model in-process (`hf`) at the same knobs and the same sweep: the server's throughput as
     a ratio of in-process (the HTTP path's cost).
  3. A short study (Optuna in SQLite, `--tracking-uri none`) over the `hf` knobs including CUDA graphs
     and async batching; the best configuration against the engine's defaults (the baseline trial).

    python3 benchmarks/serving_gpu.py --out $OUT --deadline 540
    python3 benchmarks/serving_gpu.py --out $OUT --deadline 560 --phases server,in_process --phase-s 270
    python3 benchmarks/serving_gpu.py --out $OUT --deadline 560 --phases study --study-db /tmp/sg/optuna.db
    python3 benchmarks/serving_gpu.py --out /tmp/sg --small      # CPU smoke test with the tiny model

The random-weight runs use a tokenizer covering all of Llama-3.1-8B's 128,256 ids (`workbench
make-shape-tokenizer`, made first): with a smaller one, ids past its end stream no text and the
server's latencies time chunks, not tokens (the server refuses such a run).

Results: `<out>/summary.json` and `<out>/summary.md`, each phase's trial folder and logs beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import run_logged

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT))
TINY = ROOT / "models" / "tiny-llama"
SHAPE = ROOT / "studies" / "shapes" / "llama-3.1-8b"
SHAPE_TOKENIZER = ROOT / "models" / "llama-3.1-8b-tokenizer"
LOADS = {"gpu": [1, 2, 4, 8, 16, 32, 64, 128, 256], "small": [1, 2, 4]}
STUDY_SPACE = {  # the hf knobs: the four core ones, CUDA graphs and async batching
    "gpu": {
        "max_batch_size": {"choices": [64, 128, 256]},
        "max_num_tokens": {"choices": [2048, 4096, 8192]},
        "cuda_graphs": {"choices": [True, False]},
        "use_async_batching": {"choices": ["auto", True, False]},
    },
    "small": {
        "max_batch_size": {"choices": [2, 4, 8]},
        "max_num_tokens": {"choices": [64, 128, 256]},
        "page_size": 32,
    },
}


def model_block(small: bool) -> dict[str, Any]:
    if small:
        return {"path": str(TINY), "dtype": "float32"}
    return {
        "path": str(SHAPE),
        "load_format": "dummy",
        "dtype": "bfloat16",
        "tokenizer": str(SHAPE_TOKENIZER),
    }


def workload(small: bool, sweep: bool) -> dict[str, Any]:
    w: dict[str, Any] = {
        "num_requests": 4 if small else 8,
        "warmup_requests": 2 if small else 8,
        "input_len": 32 if small else 128,
        "output_len": 8 if small else 128,
        "ignore_eos": True,
        "seed": 0,
    }
    if sweep:
        w["sweep"] = {"concurrency": LOADS["small" if small else "gpu"], "requests_per_load": 1}
    else:  # the study: one batch at the sweep's top load
        w.update(
            num_requests=8 if small else 256,
            arrival={"mode": "concurrency", "concurrency": 4 if small else 256},
        )
    return w


def study(name: str, engine: str, small: bool, sweep: bool, space: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {
        "name": name,
        "model": model_block(small),
        "engine": engine,
        "search_space": space,
        "workload": workload(small, sweep),
        "objectives": [{"metric": "output_tok_s", "direction": "maximize"}],
        "sampler": {"name": "tpe", "seed": 0},
        "budget": {"n_trials": 8},
        "trial": {
            "timeout_s": 240 if small else 120,
            **({"device": "cpu", "cpu_kv_budget_gb": 0.05, "threads": 1} if small else {}),
        },
    }
    if engine == "transformers-serve":
        s["engine_options"] = {
            "startup_timeout_s": 180,
            "request_timeout_s": 180,
            "scrape_interval_s": 0.5,
            **({"threads": 1} if small else {}),
        }
    return s


def sweep_rows(result: Path) -> list[dict[str, Any]]:
    if not result.exists():
        return []
    res = json.loads(result.read_text())
    keys = ("ttft_ms_p50", "ttft_ms_p95", "tpot_ms_p50", "tpot_ms_p95", "output_tok_s", "error_rate")
    return [
        {"concurrency": p["load"], **{k: p.get(k) for k in keys}}
        for p in res["bench"].get("sweep", {}).get("points", [])
    ]


def stream_of(result: Path) -> dict[str, Any] | None:
    """The server trial's stream check: completion tokens per streamed text chunk (1: per-token latencies)."""
    if not result.exists():
        return None
    return json.loads(result.read_text())["bench"].get("usage_check")


def trial_phase(
    name: str,
    engine: str,
    args: argparse.Namespace,
    env: dict[str, str],
    until: float,
    options: dict[str, Any] | None = None,
    loads: list[int] | None = None,
) -> list[dict[str, Any]]:
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "study.json"
    left = until - time.monotonic()
    if left < 60:
        return []
    data = study(name, engine, args.small, True, {"page_size": 32 if args.small else 256})
    data.setdefault("engine_options", {}).update(options or {})
    if loads:
        data["workload"]["sweep"]["concurrency"] = loads
    data["trial"]["timeout_s"] = int(left - 10)  # the trial fails cleanly (with its log) before the deadline
    spec.write_text(json.dumps(data, indent=2))
    run_logged(
        [sys.executable, "-m", "workbench.cli", "trial", str(spec), "--out", str(out / "trial")],
        out / "log.txt",
        left,
        env,
    )
    return sweep_rows(out / "trial" / "result.json")


def switch_interval_phase(
    args: argparse.Namespace, env: dict[str, str], per: float, until: float
) -> list[dict[str, Any]]:
    """The server at Python's default GIL switch interval (5 ms) and at `--switch-interval-ms`, alternated
    twice, at a few loads: does the event loop that streams every token wait for the GIL?"""
    loads = [1, 2] if args.small else [1, 8, 64, 256]
    rows = []
    for rep in range(2):
        for label, opts in (
            ("default", {}),
            (f"{args.switch_interval_ms:g} ms", {"switch_interval_ms": args.switch_interval_ms}),
        ):
            name = f"si{rep}-{'default' if not opts else 'set'}"
            got = trial_phase(
                name, "transformers-serve", args, env, min(until, time.monotonic() + per), opts, loads
            )
            rows += [{"switch_interval": label, "repeat": rep, **r} for r in got]
    return rows


def study_phase(args: argparse.Namespace, env: dict[str, str], until: float) -> dict[str, Any]:
    out = args.out / "study"
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "study.json"
    spec.write_text(
        json.dumps(
            study(
                "serving-gpu-hf-study", "hf", args.small, False, STUDY_SPACE["small" if args.small else "gpu"]
            ),
            indent=2,
        )
    )
    args.study_db.parent.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{args.study_db}"  # a later call passes the same file to go on with the study
    left = until - time.monotonic()
    if left > 90:
        cmd = [
            sys.executable,
            "-m",
            "workbench.cli",
            "tune",
            str(spec),
            "--storage",
            db,
            "--tracking-uri",
            "none",
            "--timeout",
            str(int(max(1, left - args.study_reserve_s))),
        ]
        run_logged(cmd, out / "log.txt", left, env)
    if args.study_db.exists() and args.study_db.resolve() != (out / "optuna.db").resolve():
        shutil.copy(args.study_db, out / "optuna.db")  # comes back with $OUT
    return study_summary(db)


def confirm_phase(args: argparse.Namespace, env: dict[str, str], until: float) -> dict[str, Any]:
    """The study's defaults and its best configuration again, alternated `--confirm-rounds` times as single
    trials (same workload, fresh processes): medians, so best-vs-defaults is not one noisy pair."""
    summary = study_summary(f"sqlite:///{args.study_db}")
    best = (summary.get("best") or {}).get("knobs") or {}
    fixed = {k: v for k, v in best.items() if v is not None}
    runs: dict[str, list[float]] = {"defaults": [], "best": []}
    per = (until - time.monotonic()) / (2 * args.confirm_rounds)
    for rnd in range(args.confirm_rounds):
        for label, space in (("defaults", {"page_size": 32 if args.small else 256}), ("best", fixed)):
            out = args.out / f"confirm-{label}-{rnd}"
            out.mkdir(parents=True, exist_ok=True)
            data = study(f"confirm-{label}", "hf", args.small, False, space)
            data["trial"]["timeout_s"] = int(max(30, per - 10))
            (out / "study.json").write_text(json.dumps(data, indent=2))
            run_logged(
                [
                    sys.executable,
                    "-m",
                    "workbench.cli",
                    "trial",
                    str(out / "study.json"),
                    "--out",
                    str(out / "trial"),
                ],
                out / "log.txt",
                max(30, per),
                env,
            )
            res = out / "trial" / "result.json"
            if res.exists() and json.loads(res.read_text())["status"] == "COMPLETE":
                runs[label].append(json.loads(res.read_text())["metrics"]["output_tok_s"])
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    out_d: dict[str, Any] = {"best_knobs": fixed, "output_tok_s": runs, "median": med}
    if len(med) == 2:
        out_d["best_vs_defaults"] = med["best"] / med["defaults"]
    return out_d


def study_summary(db: str) -> dict[str, Any]:
    import optuna

    try:
        s = optuna.load_study(study_name="serving-gpu-hf-study", storage=db)
    except Exception as e:  # noqa: BLE001 - nothing ran: say so in the summary
        return {"error": f"{type(e).__name__}: {e}"}
    done = [t for t in s.trials if t.state.name == "COMPLETE"]
    base = next((t for t in done if t.user_attrs.get("baseline")), None)
    best = max(done, key=lambda t: t.values[0], default=None)

    def row(t: Any) -> dict[str, Any] | None:
        if t is None:
            return None
        m = t.user_attrs.get("metrics") or {}
        return {
            "number": t.number,
            "knobs": t.user_attrs.get("knobs") or t.params,
            "output_tok_s": t.values[0],
            **{k: m.get(k) for k in ("ttft_ms_p95", "tpot_ms_p50", "peak_memory_gb")},
        }

    out = {
        "trials": [row(t) for t in done],
        "failed": sum(t.state.name == "FAIL" for t in s.trials),
        "baseline": row(base),
        "best": row(best),
    }
    if base is not None and best is not None and base.values[0]:
        out["best_vs_defaults"] = best.values[0] / base.values[0]
    return out


def markdown(summary: dict[str, Any]) -> str:
    """Server and in-process side by side per concurrency, then the stream check and the study."""

    def cell(r: dict[str, Any] | None, k: str, fmt: str = ".0f") -> str:
        v = (r or {}).get(k)
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    lines = [
        f"# serving_gpu ({summary['mode']}), {summary['date']}",
        "",
        "| concurrency | server tok/s | in-process tok/s | ratio | server TTFT p50/p95 ms | in-process TTFT p50/p95 ms "
        "| server TPOT p50/p95 ms | in-process TPOT p50/p95 ms |",
        "|" + "---:|" * 8,
    ]
    srv = {r["concurrency"]: r for r in summary["server"]}
    hf = {r["concurrency"]: r for r in summary["in_process"]}
    for c in sorted(set(srv) | set(hf)):
        a, b = srv.get(c), hf.get(c)
        ratio = a["output_tok_s"] / b["output_tok_s"] if a and b and b.get("output_tok_s") else None
        lines.append(
            f"| {c:g} | {cell(a, 'output_tok_s')} | {cell(b, 'output_tok_s')} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {cell(a, 'ttft_ms_p50')} / {cell(a, 'ttft_ms_p95')} | "
            f"{cell(b, 'ttft_ms_p50')} / {cell(b, 'ttft_ms_p95')} | {cell(a, 'tpot_ms_p50', '.1f')} / "
            f"{cell(a, 'tpot_ms_p95', '.1f')} | {cell(b, 'tpot_ms_p50', '.1f')} / {cell(b, 'tpot_ms_p95', '.1f')} |"
        )
    for r in summary.get("switch_interval") or []:
        lines.append(
            f"switch interval {r['switch_interval']} (run {r['repeat']}), concurrency {r['concurrency']:g}: "
            f"{cell(r, 'output_tok_s')} tok/s, TTFT p50 {cell(r, 'ttft_ms_p50')} ms, TPOT p50 {cell(r, 'tpot_ms_p50', '.1f')} ms"
        )
    if summary.get("server_stream"):
        lines += ["", f"Server stream check: {summary['server_stream']}"]
    if summary.get("confirm"):
        lines += ["", f"Confirmed (alternated single trials): {summary['confirm']}"]
    st = summary["study"]
    if st:
        lines += [
            "",
            f"Study: {len(st.get('trials') or [])} complete, {st.get('failed', 0)} failed; "
            f"defaults {st.get('baseline')}; best {st.get('best')}; best/defaults {st.get('best_vs_defaults')}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--deadline", type=float, default=540, help="seconds for everything; stops cleanly")
    ap.add_argument(
        "--small", action="store_true", help="the tiny model on CPU (a smoke test of this script)"
    )
    ap.add_argument(
        "--phases",
        default="server,in_process,study",
        help="which of server,in_process,study,confirm,switch_interval",
    )
    ap.add_argument(
        "--phase-s", type=float, help="seconds for each sweep phase (default: 35 %% of --deadline)"
    )
    ap.add_argument("--switch-interval-ms", type=float, default=0.5, help="for the switch_interval phase")
    ap.add_argument(
        "--study-reserve-s", type=float, default=130, help="study: no new trial this close to its end"
    )
    ap.add_argument("--confirm-rounds", type=int, default=2)
    ap.add_argument("--confirm-s", type=float, default=240, help="seconds for the confirm phase")
    ap.add_argument("--study-db", type=Path, help="the study's SQLite file (default <out>/study/optuna.db)")
    args = ap.parse_args()
    t0 = time.monotonic()
    until = t0 + args.deadline
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.study_db = (args.study_db or args.out / "study" / "optuna.db").resolve()
    phases = set(args.phases.split(","))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p),
        "WORKBENCH_HOME": str(args.out / "home"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }
    if args.small and not (TINY / "config.json").exists():
        run_logged(
            [sys.executable, "-m", "workbench.cli", "make-tiny-model", str(TINY)],
            args.out / "setup.log",
            120,
            env,
        )
    if not args.small and not (SHAPE_TOKENIZER / "tokenizer.json").exists():
        cmd = [
            sys.executable,
            "-m",
            "workbench.cli",
            "make-shape-tokenizer",
            str(SHAPE),
            str(SHAPE_TOKENIZER),
        ]
        run_logged(cmd, args.out / "setup.log", 120, env)
    share = 0.35 if not args.small else 0.4  # of the time: server sweep, in-process sweep, then the study
    phase_s = args.phase_s or share * args.deadline
    import datetime as dt

    summary: dict[str, Any] = {
        "mode": "small" if args.small else "gpu",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    summary["server"], summary["in_process"], summary["study"] = [], [], {}
    if "server" in phases:
        summary["server"] = trial_phase("server", "transformers-serve", args, env, time.monotonic() + phase_s)
        summary["server_stream"] = stream_of(args.out / "server" / "trial" / "result.json")
    if "switch_interval" in phases:
        summary["switch_interval"] = switch_interval_phase(args, env, phase_s, until)
    if "in_process" in phases:
        summary["in_process"] = trial_phase(
            "in_process", "hf", args, env, min(until, time.monotonic() + phase_s)
        )
    if "study" in phases:
        end = until - 10 - (args.confirm_s if "confirm" in phases else 0)
        summary["study"] = study_phase(args, env, end)
    if "confirm" in phases:
        summary["confirm"] = confirm_phase(args, env, until - 5)
    summary["elapsed_s"] = round(time.monotonic() - t0, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (args.out / "summary.md").write_text(markdown(summary))
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
