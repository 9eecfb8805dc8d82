"""Serving measurements in the benchmark: errors counted (not fatal), goodput under the study's `slo:`,
sweeps over concurrency or rate within one trial, and the server's metrics over time.

A sweep runs its loads in turn on the same server, each point `workload.num_requests` requests, or
max(min_requests, ceil(requests_per_load x load)), or those issued within `duration_s` (`Sweep`);
every point gets the number of requests it ran, the flat metrics, goodput and error rate, and the
trial reports the highest load whose p95 TTFT and TPOT meet the targets (and its throughput). The
trial's headline metrics are those of the highest load measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from workbench import metrics as M
from workbench.engines.base import Request, RequestRecord, Runner
from workbench.spec import Concurrency, Rate


def split_failed(records: list[RequestRecord]) -> tuple[list[RequestRecord], list[RequestRecord]]:
    return [r for r in records if not r.error], [r for r in records if r.error]


def error_block(failed: list[RequestRecord], total: int) -> dict[str, Any]:
    timeouts = sum(1 for r in failed if (r.error or "").startswith("timeout"))
    return {
        "num_errors": len(failed),
        "num_timeouts": timeouts,
        "error_rate": len(failed) / total if total else 0.0,
        "first_errors": sorted({(r.error or "")[:300] for r in failed})[:5],
    }


def point_metrics(records: list[RequestRecord], slo: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """(report blocks, flat metrics with error rate and goodput) of one measured run."""
    ok, failed = split_failed(records)
    if not ok:
        raise_all_failed(failed)
    summary = M.summarize(ok)
    flat = M.flat_metrics(summary)
    errors = error_block(failed, len(records))
    flat["error_rate"] = errors["error_rate"]
    if slo is not None:
        flat.update(M.goodput(ok, len(failed), flat["duration_s"], slo.ttft_ms_p95, slo.tpot_ms_p95))
    summary["errors"] = errors
    return summary, flat


def raise_all_failed(failed: list[RequestRecord]) -> None:
    from workbench.types import EngineError

    raise EngineError(f"all {len(failed)} requests failed; the first: {failed[0].error}")


def workload_at(w: Any, axis: str, load: float) -> Any:
    """The workload with its arrival set to one sweep point."""
    arrival = (
        Concurrency(mode="concurrency", concurrency=int(load))
        if axis == "concurrency"
        else Rate(mode="rate", rate=load)
    )
    return w.model_copy(update={"arrival": arrival, "sweep": None})


def run_sweep(
    runner: Runner,
    plan: Any,
    make: Any,
    drive: Any,
    offsets: Any,
    deadline: float | None,
    meter: Any = None,
) -> dict[str, Any]:
    """Every load of `plan.workload.sweep`: its summary and flat metrics, and the SLO result over them.

    With an energy `meter` (`worker.energy.EnergyMeter`) each point gets its own window's energy
    (`energy_j`, `energy_j_per_output_token`) and the top point's block stands for the trial (`energy`),
    as the top point's throughput does."""
    w = plan.workload
    sweep = w.sweep
    points, kept, energy = [], [], None
    for i, load in enumerate(sweep.loads):
        wl = workload_at(w, sweep.axis, load)
        reqs: Sequence[Request] = make(wl, i)
        conc = int(load) if sweep.axis == "concurrency" else None
        budget = (
            {}
            if sweep.duration_s is None
            else {"budget_s": sweep.duration_s, "min_requests": sweep.min_requests}
        )
        if meter is not None:
            meter.start()
        try:
            records = drive(runner, reqs, offsets(wl, len(reqs), seed=w.seed + i), conc, deadline, **budget)
        except TimeoutError as e:  # the trial fails, but the loads measured so far stay in its result
            e.partial_sweep = {
                "axis": sweep.axis,
                "cut_at_load": load,  # type: ignore[attr-defined]
                "points": [{k: v for k, v in p.items() if k != "summary"} for p in points],
            }
            raise
        summary, flat = point_metrics(records, plan.slo)
        energy = None if meter is None else meter.block(sum(r.output_len for r in records if not r.error))
        if energy is not None:
            flat["energy_j"] = energy["joules"]
            if energy["output_tokens"]:
                flat["energy_j_per_output_token"] = energy["joules"] / energy["output_tokens"]
        # the requests it ran (failed ones too; `duration_s` is from the first arrival to the last token)
        points.append({"load": load, "num_requests": len(records), **flat, "summary": summary})
        kept.append(records)
    out: dict[str, Any] = {"axis": sweep.axis, "points": points}
    if plan.slo is not None:
        flat_points = [{k: v for k, v in p.items() if k != "summary"} for p in points]
        out["slo"] = M.highest_load_meeting(flat_points, plan.slo.ttft_ms_p95, plan.slo.tpot_ms_p95)
    out["records"] = [r for rs in kept for r in rs]
    if energy is not None:
        out["energy"] = energy
    return out


def server_metrics_block(
    runner: Runner, t0: float, origin: float | None = None
) -> dict[str, list[Any]] | None:
    """The server's samples since the measured start `t0` as columns; `t` in seconds since `origin`
    (the first reported request's arrival, the time base of the report's `requests`; default `t0`)."""
    samples = runner.server_metrics()
    samples = [s for s in samples if s["t"] >= t0]
    if not samples:
        return None
    keys = sorted({k for s in samples for k in s})
    cols = {k: [s.get(k) for s in samples] for k in keys}
    base = t0 if origin is None else origin
    cols["t"] = [round(s["t"] - base, 4) for s in samples]
    return cols


def clean_nan(d: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in d.items() if not (isinstance(v, float) and math.isnan(v))}
