"""`workbench report STUDY`: one self-contained HTML file with every figure, the best configurations,
their ratio to the baseline and the environment, attached to the study's MLflow parent run."""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from workbench import plots
from workbench.metric_registry import shown_in
from workbench.study import TrialRecord, baseline_trial, best_trials, trials_frame


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


STYLE = (
    "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
    "pre{background:#f8f8f8;padding:1em;overflow:auto}</style>"
)


def _best_rows(
    best: list[Any], shown: list[str], base_m: dict[str, Any]
) -> tuple[list[str], list[list[Any]]]:
    """The knob names and one row per best trial: its number, shown metrics, ratio to the baseline, knobs."""
    records = [TrialRecord.read(t) for t in best]
    knob_names = sorted({k for r in records for k in (r.knobs or {})})
    rows = []
    for t, r in zip(best, records, strict=True):
        m = r.metrics
        ratio = m.get("output_tok_s", 0) / base_m["output_tok_s"] if base_m.get("output_tok_s") else None
        rows.append(
            [t.number, *[m.get(k) for k in shown], ratio, *[(r.knobs or {}).get(k) for k in knob_names]]
        )
    return knob_names, rows


def _environment(trials: list[Any]) -> dict[str, Any]:
    """The environment recorded in the first of these trials whose result file is here."""
    for t in trials:
        rp = TrialRecord.read(t).result_path
        if rp and Path(rp).exists():
            return json.loads(Path(rp).read_text()).get("environment", {})
    return {}


def _figures(figs: dict[str, Any]) -> list[str]:
    """Each figure under its heading; plotly.js inline once, so the file opens offline."""
    parts = []
    for i, (name, fig) in enumerate(figs.items()):
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>")
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False, div_id=f"fig-{name}")
        )
    return parts


def render(study: Any) -> str:
    """The report's HTML (pure apart from reading the trials' result files for the environment)."""
    df = trials_frame(study)
    objectives = study.user_attrs.get("objectives") or []
    base = baseline_trial(study)
    base_m = TrialRecord.read(base).metrics if base else {}
    best = best_trials(study)
    shown = [
        *objectives,
        *[m for m in shown_in("report") if m not in objectives],
    ]
    knob_names, rows = _best_rows(best, shown, base_m)
    env = _environment([*best, *([base] if base else [])])
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    name = html.escape(study.study_name)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>workbench report: {name}</title>",
        STYLE + "</head><body>",
        f"<h1>Study {name}</h1>",
        f"<p>Engine <b>{html.escape(str(study.user_attrs.get('engine')))}</b>, model "
        f"<b>{html.escape(str(study.user_attrs.get('model')))}</b>. Trials: "
        + ", ".join(f"{v} {k.lower()}" for k, v in counts.items())
        + f". Written {_dt.datetime.now().isoformat(timespec='seconds')}.</p>",
        "<h2>Best configurations</h2>",
        "<p>"
        + ("The best feasible trial" if len(best) == 1 else f"The feasible Pareto set ({len(best)} trials)")
        + "; <i>x base</i> is output throughput over the baseline (the engine's defaults, trial "
        + (str(base.number) if base else "?")
        + ").</p>",
        _table(["trial", *shown, "x base", *knob_names], rows)
        if rows
        else "<p>No feasible completed trial yet.</p>",
        "<h2>Baseline</h2>",
        _table(["metric", "value"], [[k, base_m.get(k)] for k in shown if k in base_m])
        if base_m
        else "<p>none</p>",
        *_figures(plots.study_figures(study, df)),
        "<h2>Environment</h2>",
        f"<pre>{html.escape(json.dumps(env, indent=2, default=str))}</pre>",
        "<h2>All trials</h2>",
        df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}") if not df.empty else "",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(study: Any, out: Path | None = None, tracking_uri: str | None = None) -> Path:
    out = out or Path("reports") / f"{study.study_name}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(study))
    if tracking_uri is not None:
        from workbench.tracking import attach_to_study_run

        attach_to_study_run(tracking_uri, study.study_name, out, "report")
    return out
