"""Metric functions on hand-computed timestamps."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from workbench import metrics as M
from workbench.engines.base import RequestRecord


def _records() -> list[RequestRecord]:
    return [
        RequestRecord("a", input_len=10, arrival=100.0, token_times=[100.1, 100.2, 100.4], finish=100.4),
        RequestRecord("b", input_len=20, arrival=100.1, token_times=[100.3, 100.35], finish=100.35),
    ]


def test_summary_by_hand():
    s = M.summarize(_records())
    perf, stream, info = s["performance"], s["streaming_metrics"], s["request_info"]
    assert perf["total_latency_ms"] == pytest.approx(400.0)
    assert perf["system_output_throughput_tok_s"] == pytest.approx(5 / 0.4)
    assert perf["system_total_throughput_tok_s"] == pytest.approx(35 / 0.4)
    assert perf["request_throughput_req_s"] == pytest.approx(2 / 0.4)
    # per user: 3 tokens in 0.4 s and 2 tokens in 0.25 s
    assert perf["output_throughput_per_user_tok_s"] == pytest.approx((7.5 + 8.0) / 2)
    assert perf["avg_request_latency_ms"] == pytest.approx(325.0)
    assert stream["ttft_percentiles"]["minimum"] == pytest.approx(100.0)
    assert stream["ttft_percentiles"]["maximum"] == pytest.approx(200.0)
    assert stream["avg_ttft_ms"] == pytest.approx(150.0)
    # TPOT: (0.4 - 0.1) / 2 = 150 ms and 50 ms
    assert stream["tpot_percentiles"]["average"] == pytest.approx(100.0)
    # ITL pooled: 100, 200 (a) and 50 (b) ms
    assert stream["itl_percentiles"]["p50"] == pytest.approx(100.0)
    assert stream["itl_percentiles"]["maximum"] == pytest.approx(200.0)
    assert stream["gen_tps_percentiles"]["minimum"] == pytest.approx(1 / 0.15)
    assert info["total_output_tokens"] == 5 and info["avg_input_length"] == 15
    assert info["avg_num_concurrent_requests"] == pytest.approx((0.4 + 0.25) / 0.4)


def test_flat_names():
    flat = M.flat_metrics(M.summarize(_records()))
    assert flat["output_tok_s"] == pytest.approx(12.5)
    assert flat["ttft_ms_p50"] == pytest.approx(150.0)
    assert flat["e2e_ms_mean"] == pytest.approx(325.0)
    assert set(flat) - {"duration_s"} <= M.METRIC_NAMES


def test_percentile_matches_numpy():
    rng = random.Random(3)
    for n in (1, 2, 7, 100):
        v = sorted(rng.random() for _ in range(n))
        for q in (0, 50, 90, 95, 99, 100):
            assert M.percentile(v, q) == pytest.approx(float(np.percentile(v, q)))
    assert math.isnan(M.percentile([], 50))


def test_single_token_request_has_no_tpot():
    r = RequestRecord("x", 4, 0.0, [0.5], 0.5)
    assert M.tpot_s(r) is None and M.itl_s(r) == []
    s = M.summarize([r])
    assert math.isnan(s["streaming_metrics"]["avg_tpot_ms"])
    assert s["streaming_metrics"]["avg_ttft_ms"] == pytest.approx(500.0)


def test_repeat_summary_mean_and_cv():
    out = M.repeat_summary([{"x": 10.0}, {"x": 12.0}, {"x": 14.0}])
    assert out["x"]["mean"] == pytest.approx(12.0)
    assert out["x"]["std"] == pytest.approx(2.0)
    assert out["x"]["cv"] == pytest.approx(2.0 / 12.0)
    assert M.repeat_summary([{"x": 5.0}])["x"]["cv"] == 0.0


def test_empty_summary_rejected():
    with pytest.raises(ValueError):
        M.summarize([])


def test_no_load_meeting_the_slo_scores_zero_not_nan():
    from workbench.metrics import highest_load_meeting

    pts = [
        {"load": 8.0, "ttft_ms_p95": 500.0, "tpot_ms_p95": 10.0, "request_per_s": 3.0, "output_tok_s": 300.0},
        {
            "load": 16.0,
            "ttft_ms_p95": 150.0,
            "tpot_ms_p95": 10.0,
            "request_per_s": 5.0,
            "output_tok_s": 500.0,
            "error_rate": 0.1,
        },
    ]
    assert highest_load_meeting(pts, 200, 50) == {
        "slo_max_load": 0.0,
        "slo_max_load_request_per_s": 0.0,
        "slo_max_load_output_tok_s": 0.0,
    }
    assert highest_load_meeting(pts, 600, 50)["slo_max_load"] == 8.0
