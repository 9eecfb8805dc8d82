"""The decode roofline: pure arithmetic, the data-sheet table, and what a real trial records."""

from __future__ import annotations

import math

import pytest

from workbench import estimate
from workbench.trials.worker.roofline import (
    bandwidth_for,
    datasheet_bandwidth,
    decode_batch,
    decode_bound,
    measure_bandwidth,
    roofline_metrics,
    trial_roofline,
)

LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


@pytest.mark.parametrize(
    ("name", "gb_s"),
    [
        ("NVIDIA H200", 4800.0),
        ("NVIDIA H100 80GB HBM3", 3350.0),
        ("NVIDIA H100 NVL", 3900.0),
        ("NVIDIA A100-SXM4-80GB", 2039.0),
        ("NVIDIA GH200 480GB", 4000.0),
        ("NVIDIA L40S", 864.0),
        ("NVIDIA GeForce GTX 1080", None),
    ],
)
def test_datasheet_table_picks_the_most_specific_entry(name, gb_s):
    assert datasheet_bandwidth(name) == gb_s


def test_llama_8b_decode_bound_on_an_h200():
    """bf16 Llama-3.1-8B: 16.06 GB of weights and 128 KiB of KV per token; 64 sequences of 600 tokens."""
    w = estimate.weight_bytes(LLAMA_8B, "bf16")
    kv = estimate.kv_bytes_per_token(LLAMA_8B, 2)
    assert kv == 131072 and 16.0e9 < w < 16.1e9
    b = decode_bound(weight_bytes=w, kv_bytes_per_token=kv, batch=64, mean_context=600, bandwidth_gb_s=4800)
    kv_read = 64 * 600 * 131072  # 5.03 GB
    assert b["step_bytes"] == pytest.approx(w + kv_read)
    assert b["step_s"] == pytest.approx((w + kv_read) / 4.8e12)  # ~4.4 ms
    assert b["bound_output_tok_s"] == pytest.approx(64 / b["step_s"])  # ~14,600 tok/s
    # int4 weights (0.5 B + scales per weight) move far fewer bytes: the bound rises
    w4 = estimate.weight_bytes(LLAMA_8B, "int4")
    b4 = decode_bound(weight_bytes=w4, kv_bytes_per_token=kv, batch=64, mean_context=600, bandwidth_gb_s=4800)
    assert b4["bound_output_tok_s"] > 1.5 * b["bound_output_tok_s"]


def test_decode_batch_is_capped_by_scheduler_workload_and_kv_cache():
    assert decode_batch(1024, 64, None, 600) == 64
    assert decode_batch(16, 64, 10**6, 600) == 16
    assert decode_batch(1024, 64, 12_000, 600) == 20  # the KV cache holds 20 sequences of 600 tokens
    assert decode_batch(1024, 64, 100, 600) == 1


def test_metrics_and_decode_fraction():
    b = decode_bound(weight_bytes=1e9, kv_bytes_per_token=0, batch=10, mean_context=1, bandwidth_gb_s=1000)
    m = roofline_metrics(b, output_tok_s=5000.0, tpot_ms_p50=2.0)
    assert m["roofline_output_tok_s"] == pytest.approx(10_000)  # 1 ms per step, 10 tokens
    assert m["roofline_fraction"] == pytest.approx(0.5)
    assert m["roofline_decode_fraction"] == pytest.approx(0.5)  # 1 ms bound over 2 ms measured
    assert "roofline_decode_fraction" not in roofline_metrics(b, 5000.0, math.nan)


def test_bandwidth_sources_are_labelled():
    assert bandwidth_for("cuda", "NVIDIA H200", None) == {
        "gb_s": 4800.0,
        "method": "data sheet (NVIDIA H200)",
    }
    got = bandwidth_for("cuda", "NVIDIA H200", {"gb_s": 4100.0, "method": "measured"})
    assert got["gb_s"] == 4100.0 and got["datasheet_gb_s"] == 4800.0
    assert bandwidth_for("cpu", "cpu", None) is None
    report = {
        "request_info": {"num_requests": 8, "avg_input_length": 100, "avg_output_length": 20},
        "performance": {"system_output_throughput_tok_s": 50.0},
        "streaming_metrics": {"tpot_percentiles": {"p50": 10.0}},
    }
    assert (
        trial_roofline(
            knobs={},
            report=report,
            weight_bytes=1e6,
            kv_bytes_per_token=10,
            kv_cache_tokens=None,
            bandwidth=None,
        )
        is None
    )
    r = trial_roofline(
        knobs={"max_batch_size": 4},
        report=report,
        weight_bytes=1e6,
        kv_bytes_per_token=10,
        kv_cache_tokens=None,
        bandwidth={"gb_s": 10.0, "method": "x"},
    )
    assert r["estimate"] is True and r["inputs"]["batch"] == 4 and r["inputs"]["mean_context"] == 110


def test_cpu_copy_bandwidth_is_measured():
    bw = measure_bandwidth("cpu", size_mib=16, repeats=3)
    assert 0.1 < bw["gb_s"] < 2000 and bw["method"].startswith("measured")


def test_a_real_trial_records_its_roofline(tiny_model, tmp_path):
    from tests.conftest import small_study
    from workbench.spec import validate_spec
    from workbench.trials.orchestrator.run import run_trial

    res = run_trial(validate_spec(small_study(tiny_model)), {"max_batch_size": 4}, out_dir=tmp_path)
    assert res.status == "COMPLETE"
    roof = res.bench["roofline"]
    m = res.metrics
    assert roof["estimate"] and roof["bandwidth"]["method"].startswith("measured: 128 MiB cpu copy")
    assert (
        roof["inputs"]["batch"] == 4 and roof["inputs"]["weight_bytes"] == res.engine_config["weights_bytes"]
    )
    assert m["roofline_fraction"] == pytest.approx(m["output_tok_s"] / m["roofline_output_tok_s"])
    assert 0 < m["roofline_fraction"] < 1  # nothing beats the bandwidth bound
