"""The benchmark: warm-up, then the workload under its arrival pattern, repeated; a trtllm-bench-style report.

Runs inside the worker process against an opened Runner. Every request's arrival, token and finish
times are recorded; metrics are computed from them by `workbench.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import workbench.trials.worker.sweep as S
from workbench import metrics as M
from workbench.engines.base import EngineError, Request, RequestRecord
from workbench.engines.runner import Runner
from workbench.trials.worker.energy import EnergyMeter
from workbench.trials.worker.progress import PROGRESS_FILE, Progress
from workbench.trials.workload import (
    Drawn,
    arrival_offsets,
    make_requests,
    measured_requests,
    offset_stream,
    request_stream,
)

REPORT_SCHEMA = "workbench.bench_report"
REPORT_SCHEMA_VERSION = 1


def drive(
    runner: Runner,
    requests: Sequence[Request],
    offsets: Sequence[float] | None,
    concurrency: int | None,
    deadline: float | None = None,
    budget_s: float | None = None,
    min_requests: int = 1,
) -> list[RequestRecord]:
    """Submit `requests` at their offsets (or keeping `concurrency` in flight) and wait for all of them.

    With `budget_s`, a request is issued only within that many seconds of the first one (on the rate
    axis: when its arrival offset is, so the set is the seed's), once `min_requests` have been; then
    the ones in flight are waited for. The records of the requests issued come back, in order."""
    n = len(requests)
    done: dict[str, RequestRecord] = {}
    issued: list[Request] = []
    t0 = time.perf_counter()

    def submit_next() -> None:
        issued.append(requests[len(issued)])
        runner.submit(issued[-1])

    def may_issue() -> bool:
        k = len(issued)
        if k >= n:
            return False
        if budget_s is None or k < min_requests:
            return True
        return (offsets[k] if offsets is not None else time.perf_counter() - t0) < budget_s

    if offsets is None:
        while len(issued) < (concurrency or n) and may_issue():
            submit_next()
    while len(done) < len(issued) or may_issue():
        if deadline is not None and time.perf_counter() > deadline:
            total = n if budget_s is None else len(issued)
            raise TimeoutError(
                f"benchmark deadline reached with {total - len(done)} of {total} requests unfinished"
            )
        wait = 0.5
        if offsets is not None:
            now = time.perf_counter() - t0
            while may_issue() and offsets[len(issued)] <= now:
                submit_next()
            if may_issue():
                wait = min(wait, max(0.0, offsets[len(issued)] - (time.perf_counter() - t0)))
        if len(issued) == len(done):  # nothing in flight: sleep until the next arrival
            time.sleep(wait)
            continue
        for rec in runner.collect(timeout=wait):
            done[rec.id] = rec
            if offsets is None and may_issue():
                submit_next()
    return [done[r.id] for r in issued]


def check_records(
    records: list[RequestRecord],
    requests: list[Request],
    kv_cache_tokens: int | None,
    counts_errors: bool = False,
) -> None:
    """Fail loudly when the engine failed requests or returned fewer tokens than asked.

    Server engines (`counts_errors`) report failed requests and timeouts as part of the result: they
    are counted (`error_rate`), not fatal, unless every request failed."""
    failed = [r for r in records if r.error]
    if counts_errors:
        if failed and len(failed) == len(records):
            raise EngineError(f"all {len(records)} requests failed; the first: {failed[0].error}")
        records = [r for r in records if not r.error]
        failed = []
    if failed:
        longest = max(len(q.input_ids) + q.max_new_tokens for q in requests)
        msg = f"{len(failed)} of {len(records)} requests failed inside the engine: {failed[0].error}"
        if kv_cache_tokens is not None and kv_cache_tokens < longest:
            msg += (
                f" (the KV cache holds {kv_cache_tokens} tokens, less than one request of "
                f"{longest} tokens: raise kv_cache_fraction or the memory budget)"
            )
        raise EngineError(msg)
    by_id = {q.id: q for q in requests}
    for r in records:
        q = by_id[r.id]
        if q.ignore_eos and r.output_len != q.max_new_tokens:
            raise EngineError(
                f"request {r.id} returned {r.output_len} tokens, expected exactly {q.max_new_tokens} "
                "(EOS is ignored in this workload)"
            )
        if r.output_len == 0:
            raise EngineError(f"request {r.id} returned no tokens")
        if r.output_ids and len(r.output_ids) != r.output_len:
            raise EngineError(
                f"request {r.id}: {len(r.output_ids)} tokens but {r.output_len} token timestamps"
            )


def run_benchmark(
    runner: Runner,
    plan: Any,
    *,
    vocab_size: int,
    tokenizer: Any = None,
    special_ids: set[int] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Warm up, run the workload `repeats` times, and report the run with the median output throughput."""
    w = plan.workload
    ds_path = Path(plan.dataset_path) if plan.dataset_path else None
    common = dict(vocab_size=vocab_size, tokenizer=tokenizer, dataset_path=ds_path, special_ids=special_ids)
    warmup_s = warm_up(runner, w, common)
    counts = runner.counts_errors
    t0 = time.perf_counter()
    if w.sweep is not None:
        return sweep_report(runner, plan, common, deadline, warmup_s, t0)
    concurrency = getattr(w.arrival, "concurrency", None)
    runs, flats, kept = [], [], []
    meter = EnergyMeter(plan.device_kind, plan.device_index)
    meter.start()
    for rep in range(w.repeats):
        reqs = measured_requests(w, rep, **common)
        records = drive(runner, reqs, arrival_offsets(w, len(reqs), seed=w.seed + rep), concurrency, deadline)
        check_records(records, reqs, runner.stats().kv_cache_tokens, counts)
        summary, flat = S.point_metrics(records, plan.slo) if counts or plan.slo else (None, None)
        if summary is None:
            summary = M.summarize(records)
            flat = M.flat_metrics(summary)
        runs.append(summary)
        flats.append(flat)
        kept.append(records)
    energy = meter.block(sum(r.output_len for records in kept for r in records))
    # the run with the median output throughput stands for the trial; the mean and CV cover all runs
    order = sorted(range(len(runs)), key=lambda i: flats[i]["output_tok_s"])
    median = order[len(order) // 2]
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "world_info": world_info(plan.knobs, runner, w),
        "dataset": dataset_block(kept[median], ds_path),
        **runs[median],
        "warmup": {"requests": w.warmup_requests, "seconds": warmup_s},
        **repeats_blocks(flats, median),
        # per-request timings of the median run (trtllm-bench --request_json), relative to its start
        "requests": request_timings(kept[median]),
        **serving_blocks(runner, t0, min(r.arrival for r in kept[median])),
        **({"energy": energy} if energy else {}),
    }


def serving_blocks(runner: Runner, t0: float, origin: float) -> dict[str, Any]:
    """The server's metrics over time (on the time base of `requests`: seconds since `origin`) and the
    client's token-count check (server engines only)."""
    out: dict[str, Any] = {}
    series = S.server_metrics_block(runner, t0, origin)
    if series is not None:
        out["server_metrics"] = series
    check = runner.usage_check
    if check is not None:
        out["usage_check"] = stream_check(dict(check))
    return out


#: more streamed tokens per text chunk than this, and latencies are not per-token figures
CHUNKY_STREAM = 1.5


def stream_check(check: dict[str, Any]) -> dict[str, Any]:
    """The usage check with tokens per streamed text chunk, and a warning when chunks hold several."""
    tokens, chunks = check.get("completion_tokens") or 0, check.get("text_chunks") or 0
    if tokens and chunks:
        check["tokens_per_chunk"] = round(tokens / chunks, 3)
        if tokens / chunks > CHUNKY_STREAM:
            check["warning"] = (
                f"the server streamed {tokens / chunks:.1f} tokens per text chunk: TTFT, ITL and "
                "TPOT time chunks, not tokens; quote throughput only"
            )
    return check


def sweep_report(
    runner: Runner, plan: Any, common: dict[str, Any], deadline: float | None, warmup_s: float, t0: float
) -> dict[str, Any]:
    """A trial over several loads: the highest load (a search: the load it found) stands for the trial;
    every point is in `sweep`."""
    w = plan.workload

    budgeted = w.sweep.duration_s is not None

    def make(wl: Any, i: int, load: float) -> Sequence[Request]:
        n = w.sweep.requests_at(load, w.num_requests)
        if budgeted:  # drawn one by one while the point runs: it issues a prefix of the seed's sequence
            return Drawn(request_stream(wl, seed=w.seed + i, prefix=f"load{i}", **common), n)
        return make_requests(wl, n, seed=w.seed + i, prefix=f"load{i}", **common)

    def offsets(wl: Any, n: int, seed: int) -> Sequence[float] | None:
        if budgeted:
            stream = offset_stream(wl, seed=seed)
            return None if stream is None else Drawn(stream, None)
        return arrival_offsets(wl, n, seed=seed)

    meter = EnergyMeter(plan.device_kind, plan.device_index)
    progress = Progress(Path(plan.out_dir) / PROGRESS_FILE)
    sw = S.run_sweep(runner, plan, make, drive, offsets, deadline, meter, progress)
    records = sw.pop("records")
    energy = sw.pop("energy", None)
    top = sw["points"][sw.pop("headline")]
    flat = {k: v for k, v in top.items() if k not in ("summary", "load", "num_requests", "energy_j")}
    flat.pop(
        "energy_j_per_output_token", None
    )  # derived from the report's `energy` block, as without a sweep
    flat.update(sw.get("slo", {}))
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "world_info": world_info(plan.knobs, runner, w),
        "dataset": dataset_block([r for r in records if not r.error] or records, None),
        **top["summary"],
        "warmup": {"requests": w.warmup_requests, "seconds": warmup_s},
        **repeats_blocks([flat], 0),
        "sweep": {**sw, "points": [{k: v for k, v in p.items() if k != "summary"} for p in sw["points"]]},
        "requests": request_timings(records),
        **serving_blocks(runner, t0, min(r.arrival for r in records)),
        **({"energy": energy} if energy else {}),
    }


def warm_up(runner: Runner, w: Any, common: dict[str, Any]) -> float:
    """Run the warm-up requests (not measured); return how long they took."""
    if not w.warmup_requests:
        return 0.0
    warm = make_requests(w, w.warmup_requests, seed=w.seed + 10_000, prefix="warmup", **common)
    t = time.perf_counter()
    check_records(runner.generate(warm), warm, runner.stats().kv_cache_tokens)
    return time.perf_counter() - t


def world_info(knobs: dict[str, Any], runner: Runner, w: Any) -> dict[str, Any]:
    return {
        "max_batch_size": knobs.get("max_batch_size"),
        "max_num_tokens": knobs.get("max_num_tokens"),
        "kv_cache_percentage": knobs.get("kv_cache_fraction"),
        "scheduling_policy": runner.stats().scheduling_policy,
        "kv_cache_tokens": runner.stats().kv_cache_tokens,
        "issue_rate": getattr(w.arrival, "rate", None),
        "concurrency": getattr(w.arrival, "concurrency", None),
        "arrival": w.arrival.mode,
    }


def dataset_block(records: list[RequestRecord], ds_path: Path | None) -> dict[str, Any]:
    in_lens = [r.input_len for r in records]
    out_lens = [r.output_len for r in records]
    return {
        "source": str(ds_path) if ds_path else "synthetic",
        "num_requests": len(records),
        "isl_stats": M.distribution(in_lens),
        "osl_stats": M.distribution(out_lens),
        "max_sequence_length": max(i + o for i, o in zip(in_lens, out_lens, strict=False)),
    }


def repeats_blocks(flats: list[dict[str, float]], median: int) -> dict[str, Any]:
    rep_summary = M.repeat_summary(flats)
    keys = ("output_tok_s", "request_per_s", "ttft_ms_p50", "tpot_ms_p50")
    return {
        "repeats": {
            "n": len(flats),
            "median_run": median,
            "metrics": rep_summary,
            "runs": [{k: f[k] for k in keys} for f in flats],
        },
        "mean_metrics": {k: v["mean"] for k, v in rep_summary.items()},
    }


def request_timings(records: list[RequestRecord]) -> list[dict[str, Any]]:
    t0 = min(r.arrival for r in records)
    return [
        {
            "id": r.id,
            "input_len": r.input_len,
            "output_len": r.output_len,
            "arrival_s": round(r.arrival - t0, 6),
            "token_times_s": [round(t - t0, 6) for t in r.token_times],
        }
        for r in records
    ]
