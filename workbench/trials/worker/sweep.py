"""Serving measurements in the benchmark: errors counted (not fatal), goodput under the study's `slo:`,
sweeps over concurrency or rate within one trial, and the server's metrics over time.

A sweep runs its loads in turn on the same server, each point `workload.num_requests` requests, or
max(min_requests, ceil(requests_per_load x load)), or those issued within `duration_s` (`Sweep`);
every point gets the number of requests it ran, the flat metrics, goodput and error rate, and the
trial reports the highest load whose p95 TTFT and TPOT meet the targets (and its throughput). The
trial's headline metrics are those of the highest load measured. With `search`, the loads are the
probes of `load_search.LoadSearch` (gallop, bisect, the lower end repeated) and the trial reports the
load it found, the bracket above it and the headline metrics at that load.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench import metrics as M
from workbench.engines.base import Request, RequestRecord
from workbench.engines.runner import Runner
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
    progress: Any = None,
) -> dict[str, Any]:
    """Every load of `plan.workload.sweep` (its fixed list, or the probes of its `search`): each point's
    summary and flat metrics, the SLO result over them, and `headline`, the index of the point that
    stands for the trial (the highest load; for a search, the last run at the load it found).

    With an energy `meter` (`worker.energy.EnergyMeter`) each point gets its own window's energy
    (`energy_j`, `energy_j_per_output_token`) and the headline point's block stands for the trial
    (`energy`), as its throughput does. Each point is also a `progress` step (`worker.progress`), with
    the highest load met so far, for the pruner watching the trial."""
    sweep = plan.workload.sweep
    run_point = _Points(runner, plan, make, drive, offsets, deadline, meter)
    points: list[dict[str, Any]] = []
    kept: list[list[RequestRecord]] = []
    energies: list[dict[str, Any] | None] = []

    def measure(load: float) -> dict[str, Any]:
        i = len(points)
        try:
            records, energy = run_point.run(i, load)
        except TimeoutError as e:  # the trial fails, but the loads measured so far stay in its result
            e.partial_sweep = {  # type: ignore[attr-defined]
                "axis": sweep.axis,
                "cut_at_load": load,
                "points": [{k: v for k, v in p.items() if k != "summary"} for p in points],
            }
            raise
        summary, flat = point_metrics(records, plan.slo)
        if energy is not None:
            flat["energy_j"] = energy["joules"]
            if energy["output_tokens"]:
                flat["energy_j_per_output_token"] = energy["joules"] / energy["output_tokens"]
        # the requests it ran (failed ones too; `duration_s` is from the first arrival to the last token)
        points.append({"load": load, "num_requests": len(records), **flat, "summary": summary})
        kept.append(records)
        energies.append(energy)
        if progress is not None:
            progress.step(load, {**flat, **_met_so_far(points, plan.slo)})
        return points[-1]

    out: dict[str, Any] = {"axis": sweep.axis}
    if sweep.search is not None:
        out.update(_search(sweep.search, plan.slo, measure, points))
    else:
        for load in sweep.loads:
            measure(load)
        out["headline"] = len(points) - 1
        if plan.slo is not None:
            flat_points = [{k: v for k, v in p.items() if k != "summary"} for p in points]
            out["slo"] = M.highest_load_meeting(flat_points, plan.slo.ttft_ms_p95, plan.slo.tpot_ms_p95)
    out["points"] = points
    out["records"] = [r for rs in kept for r in rs]
    if energies[out["headline"]] is not None:
        out["energy"] = energies[out["headline"]]
    return out


def _met_so_far(points: list[dict[str, Any]], slo: Any) -> dict[str, float]:
    """The highest load meeting the targets among the points measured so far (none without `slo:`)."""
    if slo is None:
        return {}
    met = [p["load"] for p in points if M.load_meets(p, slo.ttft_ms_p95, slo.tpot_ms_p95)]
    return {"slo_max_load": max(met) if met else 0.0}


@dataclass(frozen=True)
class _Points:
    """How one point of a sweep is run: the trial's runner and plan, and the bench's request makers."""

    runner: Runner
    plan: Any
    make: Any
    drive: Any
    offsets: Any
    deadline: float | None
    meter: Any

    def run(self, i: int, load: float) -> tuple[list[RequestRecord], dict[str, Any] | None]:
        """Point `i` at `load` (its own seed and request ids): its records and energy window."""
        w = self.plan.workload
        sweep = w.sweep
        wl = workload_at(w, sweep.axis, load)
        reqs: Sequence[Request] = self.make(wl, i, load)
        conc = int(load) if sweep.axis == "concurrency" else None
        budget = (
            {}
            if sweep.duration_s is None
            else {"budget_s": sweep.duration_s, "min_requests": sweep.min_requests}
        )
        if self.meter is not None:
            self.meter.start()
        offsets = self.offsets(wl, len(reqs), seed=w.seed + i)
        records = self.drive(self.runner, reqs, offsets, conc, self.deadline, **budget)
        output = sum(r.output_len for r in records if not r.error)
        return records, None if self.meter is None else self.meter.block(output)


def _search(spec: Any, slo: Any, measure: Any, points: list[dict[str, Any]]) -> dict[str, Any]:
    """Drive the load search with real probes; the SLO block, the search's record and the headline."""
    from workbench.trials.worker.load_search import LoadSearch

    low, high = spec.bounds
    search = LoadSearch(
        axis=spec.axis,
        low=low,
        high=high,
        growth=spec.growth,
        resolution=spec.resolution,
        repeats=spec.repeats,
        max_probes=spec.max_probes,
    )
    while (load := search.next_load()) is not None:
        point = measure(load)
        search.record(load, M.load_meets(point, slo.ttft_ms_p95, slo.tpot_ms_p95))
    res = search.result()
    found = res["slo_max_load"]
    at = [
        i
        for i, p in enumerate(points)
        if p["load"] == found and M.load_meets(p, slo.ttft_ms_p95, slo.tpot_ms_p95)
    ]
    headline = at[-1] if at else min(range(len(points)), key=lambda i: points[i]["load"])

    def median(key: str) -> float:
        return statistics.median(points[i][key] for i in at)

    block = {
        "slo_max_load": found,
        "slo_max_load_request_per_s": median("request_per_s") if at else 0.0,
        "slo_max_load_output_tok_s": median("output_tok_s") if at else 0.0,
        "slo_max_load_goodput_output_tok_s": median("goodput_output_tok_s") if at else 0.0,
        "slo_search_probes": float(res["probes"]),
    }
    if res["bracket_high"] is not None:  # none: `high` itself passed (the answer is capped there)
        block["slo_bracket_high"] = res["bracket_high"]
    history = [{"load": x, "meets": m, "phase": ph} for x, m, ph in search.history]
    return {"slo": block, "search": {**res, "history": history}, "headline": headline}


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
