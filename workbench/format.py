"""How numbers, trial results and trial tables are written for people: one formatter for the command line,
the notebook API and the HTML report, so a value reads the same wherever it is shown.

Pure and standard library only: it reads trial results and `trial_rows()` dicts by their fields and
imports nothing of the workbench, so any layer may use it.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.metric_registry import label, shown_in

MISSING = "-"
#: knobs shown as columns of the status table (the common ones; all are in `--json`)
STATUS_KNOBS = ("max_batch_size", "kv_cache_fraction", "max_num_tokens", "quantization")
#: metrics shown after the objectives when any trial has them (metric_registry: shown in "status")
STATUS_EXTRA = shown_in("status")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt(v: Any, unit: str = "", digits: int | None = None, missing: str = MISSING) -> str:
    """A value for people: 4 significant digits by default, or `digits` decimals with thousands
    separators; None is `missing`, NaN is "nan" in tables (`digits=None`) and `missing` with `digits`."""
    if v is None:
        return missing
    if isinstance(v, float) and math.isnan(v):
        return missing if digits is not None else "nan"
    if digits is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:,.{digits}f}{unit}"
    if isinstance(v, float):
        return f"{v:.4g}{unit}"
    return f"{v}{unit}"


def pct(v: Any) -> str:
    """A fraction as a percentage with one decimal."""
    return MISSING if _missing(v) else f"{100 * v:.1f}%"


def table(head: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ one trial
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
    if res.status == "COMPLETE":
        rows += _performance_rows(res)
        rows += _accuracy_rows(res)
    rows.append(("result", res.files.get("result", "")))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _performance_rows(res: Any) -> list[tuple[str, str]]:
    m = res.metrics

    def f(key: str, unit: str = "", digits: int = 1) -> str:
        return fmt(m.get(key), unit, digits)

    cv = m.get("output_tok_s_cv")
    rep = res.bench["repeats"]["n"] if res.bench else 1
    memory_source = f"  ({res.bench['memory']['source']})" if res.bench else ""
    return [
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
        ("peak memory above baseline", f("peak_memory_gb", " GB", 3) + memory_source),
        ("KV cache capacity", f("kv_cache_tokens", " tokens", 0)),
        ("roofline (estimate)", _roofline(m, f)),
        (
            "build",
            f"key {res.build.get('build_key') or '-'}, "
            f"{'cache hit' if res.build.get('cache_hit') else f('build_s', ' s')}",
        ),
    ]


def _roofline(m: dict[str, Any], f: Any) -> str:
    if "roofline_fraction" not in m:
        return MISSING
    return (
        f"{pct(m.get('roofline_fraction'))} of the decode bound {f('roofline_output_tok_s', ' tok/s', 0)}"
        f" at {f('memory_bandwidth_gb_s', ' GB/s', 0)}; decode steps {pct(m.get('roofline_decode_fraction'))}"
    )


def _accuracy_rows(res: Any) -> list[tuple[str, str]]:
    m = res.metrics
    if "gsm8k_score" not in m:
        return []
    acc = res.accuracy or {}
    reused = acc.get("reused_from_trial")
    how = f"reused from trial {reused}" if reused is not None else f"n={int(m['gsm8k_n'])}"
    score = f"{m['gsm8k_strict']:.3f} / {m['gsm8k_flexible']:.3f}  (score {m['gsm8k_score']:.2f}, {how})"
    rows = [("GSM8K strict / flexible", score)]
    gate = acc.get("gate")
    if gate:
        rows.append(
            (
                "accuracy gate",
                f"{gate['decision']}: threshold {gate['threshold']:.2f} "
                f"(baseline {gate['baseline']:.2f} - {gate.get('max_drop', 0):g}, alpha {gate['alpha']:g})",
            )
        )
    return rows


# ----------------------------------------------------------------------------------- a study's trials
def status_table(rows: list[dict[str, Any]], objective_names: list[str]) -> str:
    """The `workbench status` table of `trial_rows()`, with the roofline note when the table shows it."""
    knob_names = sorted({k for r in rows for k in (r["knobs"] or {}) if k in STATUS_KNOBS})
    extra = [k for k in STATUS_EXTRA if k not in objective_names and any(k in r["metrics"] for r in rows)]
    head = ["#", "state", *knob_names, *objective_names, *[label(k) for k in extra], "x base", "note"]
    body = [
        [
            str(r["number"]),
            r["state"],
            *[fmt(r["knobs"].get(k)) for k in knob_names],
            *[fmt(r["metrics"].get(n)) for n in objective_names],
            *[
                pct(r["metrics"].get(k)) if k == "roofline_fraction" else fmt(r["metrics"].get(k))
                for k in extra
            ],
            fmt(r.get("vs_baseline")),
            _note(r),
        ]
        for r in rows
    ]
    out = table(head, body)
    if "roofline_fraction" in extra and (note := _roofline_note(rows)):
        out += "\n" + note
    return out


def _note(r: dict[str, Any]) -> str:
    note = "baseline" if r["baseline"] else ""
    if r["failure"]:
        return f"{r['failure_kind']}: {r['failure']}"[:70]
    if r["duplicate_of"] is not None:
        return f"= trial {r['duplicate_of']}"
    if r["feasible"] is False:
        return (note + " infeasible (constraint)").strip()
    return note


def _roofline_note(rows: list[dict[str, Any]]) -> str:
    bws = sorted(
        {
            round(r["metrics"]["memory_bandwidth_gb_s"])
            for r in rows
            if r["metrics"].get("memory_bandwidth_gb_s")
        }
    )
    if not bws:
        return ""
    return (
        "roofline (est.): output tok/s over the decode-phase bound = batch x bandwidth / (weights at "
        "their quantized size + KV cache read per step); bandwidth "
        + (f"{bws[0]:,} GB/s" if bws[0] == bws[-1] else f"{bws[0]:,}-{bws[-1]:,} GB/s")
        + " (measured by a device copy in each trial, or the data sheet)"
    )


def format_best(objective_names: list[str], best: list[Any], rows: list[dict[str, Any]]) -> str:
    """The best trial, or the Pareto set: each with its objective values, ratio to the baseline and knobs."""
    if not best:
        return "no feasible completed trial yet"
    by_num = {r["number"]: r for r in rows}
    title = (
        "best configuration" if len(best) == 1 else f"Pareto set under the constraints ({len(best)} trials)"
    )
    lines = [title + ":"]
    for t in best:
        r = by_num[t.number]
        vals = ", ".join(f"{n}={v:.4g}" for n, v in zip(objective_names, t.values, strict=False))
        ratio = f" ({r['vs_baseline']:.2f}x the baseline's output_tok_s)" if r.get("vs_baseline") else ""
        lines.append(f"  trial {t.number}: {vals}{ratio}")
        lines.append("    " + ", ".join(f"{k}={v}" for k, v in (r["knobs"] or {}).items()))
    return "\n".join(lines)


def format_comparison(comparison: Any) -> str:
    """A cross-check's metrics side by side (an `engines.base.Crosscheck`): ours, the tool's, tool / ours."""
    lines = [f"{'metric':<24}{'workbench':>14}{comparison.tool:>14}{'ratio':>8}"]
    for k, m in comparison.metrics.items():
        ours = MISSING if m.ours is None else f"{m.ours:.4g}"
        ratio = MISSING if m.ratio is None else f"{m.ratio:.2f}"
        lines.append(f"{k:<24}{ours:>14}{m.theirs:>14.4g}{ratio:>8}")
    return "\n".join(lines)


def short_repr(v: Any, limit: int = 60) -> str:
    """`repr(v)` cut to `limit` characters: error messages quote the user's value, and a value from a
    hostile file may be huge (a million-character string, an alias-expanded list)."""
    if isinstance(v, (list, tuple, dict, set)) and len(v) > limit:  # never render a huge container
        return f"<{type(v).__name__} of {len(v)} items>"
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 4 * limit:
        return f"<an integer of about {int(v.bit_length() * 0.30103)} digits>"
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 4] + " ..."
