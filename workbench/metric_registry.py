"""Every metric a trial can report, declared once: unit, which way is better, label, where it is shown,
and, for a derived one, how it is computed from the trial's result.

`format` (the status table), `tracking` (ratios to the baseline, the MLflow UI's columns), `report`
and `export` read their metric lists from here, and `spec` accepts exactly these names in objectives
and constraints. Derived metrics are computed on the orchestrating side (`derive`, called by
`run_trial` after any executor), so a replayed grid gets them as a measured trial does.
Adding a metric is a `MetricDef` here (and, when measured, the line in the worker that records it).

Pure and standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: where a metric appears besides Optuna and MLflow (which record every finite metric)
Place = Literal["status", "mlflow_columns", "vs_baseline", "report", "export"]


@dataclass(frozen=True)
class DeriveInput:
    """What a derived metric may read: the trial's measured metrics and benchmark report, and the study's
    cost settings (None when the study has no `cost:`)."""

    metrics: dict[str, Any]
    bench: dict[str, Any]
    usd_per_gpu_hour: float | None = None
    gpus: int = 1


@dataclass(frozen=True)
class MetricDef:
    name: str
    unit: str = ""
    better: Literal["higher", "lower"] | None = None
    label: str = ""
    shown: frozenset[str] = field(default_factory=frozenset)
    #: an estimate (a model of the hardware, not a measurement): labelled so wherever it is shown
    estimate: bool = False
    derive: Callable[[DeriveInput], float | None] | None = None

    @property
    def title(self) -> str:
        return self.label or self.name


def _usd_per_m_output_tokens(d: DeriveInput) -> float | None:
    """The GPU cost of a million output tokens at the measured throughput: price x GPUs x the time."""
    tok_s = d.metrics.get("output_tok_s")
    if not d.usd_per_gpu_hour or not tok_s:
        return None
    return d.usd_per_gpu_hour * d.gpus / 3600.0 / float(tok_s) * 1e6


def _energy_j_per_output_token(d: DeriveInput) -> float | None:
    """NVML's energy counter over the measured window, over the output tokens made in it."""
    e = d.bench.get("energy") or {}
    joules, tokens = e.get("joules"), e.get("output_tokens")
    return float(joules) / tokens if joules is not None and tokens else None


def _m(name: str, unit: str = "", better: str | None = None, *shown: str, **kw: Any) -> MetricDef:
    return MetricDef(name, unit, better, shown=frozenset(shown), **kw)  # type: ignore[arg-type]


_LATENCIES = ("ttft", "tpot", "itl", "e2e")
_STATS = ("mean", "p50", "p90", "p95", "p99")
_LATENCY_SHOWN = {
    "ttft_ms_p95": ("status", "mlflow_columns", "vs_baseline", "report", "export"),
    "ttft_ms_p50": ("export",),
    "tpot_ms_p50": ("mlflow_columns", "vs_baseline", "export"),
}

METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in [
        _m(
            "output_tok_s", "tok/s", "higher", "mlflow_columns", "vs_baseline", "export", label="output tok/s"
        ),
        _m("total_tok_s", "tok/s", "higher", "vs_baseline"),
        _m("request_per_s", "req/s", "higher", "vs_baseline", "export"),
        _m("per_user_output_tok_s", "tok/s", "higher"),
        *[
            _m(f"{lat}_ms_{s}", "ms", "lower", *_LATENCY_SHOWN.get(f"{lat}_ms_{s}", ()))
            for lat in _LATENCIES
            for s in _STATS
        ],
        _m("peak_memory_gb", "GB", "lower", "status", "mlflow_columns", "vs_baseline", "report", "export"),
        _m("kv_cache_tokens", "tokens", "higher"),
        _m("build_s", "s", "lower"),
        _m("weights_gb", "GB", "lower"),
        _m("kv_cache_gb", "GB", "higher"),
        _m("duration_s", "s"),
        _m("gsm8k_strict", "", "higher"),
        _m("gsm8k_flexible", "", "higher"),
        _m("gsm8k_score", "", "higher", "status", "report", "export"),
        # the decode roofline (estimates; workbench.trials.worker.roofline)
        _m("roofline_output_tok_s", "tok/s", None, estimate=True),
        _m("roofline_fraction", "", "higher", "status", estimate=True, label="roofline (est.)"),
        _m("roofline_decode_fraction", "", "higher", estimate=True),
        _m("roofline_step_ms", "ms", None, estimate=True),
        _m("memory_bandwidth_gb_s", "GB/s", None, estimate=True),
        # serving: requests that failed or timed out, and service targets (study `slo:`)
        _m("error_rate", "", "lower"),
        _m("goodput_request_per_s", "req/s", "higher"),
        _m("goodput_output_tok_s", "tok/s", "higher"),
        _m("goodput_fraction", "", "higher"),
        _m("slo_max_load", "", "higher"),
        _m("slo_max_load_request_per_s", "req/s", "higher"),
        _m("slo_max_load_output_tok_s", "tok/s", "higher"),
        # a load search (workload.sweep.search): the bracket above the load found, and what it cost
        _m("slo_max_load_goodput_output_tok_s", "tok/s", "higher"),
        _m("slo_bracket_high", "", None),
        _m("slo_search_probes", "", "lower"),
        # derived on the orchestrating side (`derive`)
        _m(
            "usd_per_m_output_tokens",
            "USD/M tok",
            "lower",
            "status",
            "mlflow_columns",
            "report",
            "export",
            label="USD / M output tok",
            derive=_usd_per_m_output_tokens,
        ),
        _m(
            "energy_j_per_output_token",
            "J/tok",
            "lower",
            "status",
            "mlflow_columns",
            "report",
            "export",
            label="J / output tok",
            derive=_energy_j_per_output_token,
        ),
    ]
}


def shown_in(place: Place) -> tuple[str, ...]:
    """The metrics shown in `place`, in declaration order."""
    return tuple(name for name, m in METRICS.items() if place in m.shown)


def label(name: str) -> str:
    m = METRICS.get(name)
    return m.title if m else name


def derive(d: DeriveInput) -> dict[str, float]:
    """Every derived metric this result has the inputs for."""
    out = {}
    for name, m in METRICS.items():
        if m.derive is not None and (v := m.derive(d)) is not None:
            out[name] = v
    return out
