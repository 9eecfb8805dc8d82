"""The highest load meeting the SLO, searched per trial (issue #21 item 1): the pure search against known
knees, then a real trial on a trivial server whose latency rises past a known concurrency."""

from __future__ import annotations

import random

import pytest

from workbench.trials.worker.load_search import LoadSearch


def search(knee: float, noise: float = 0.0, seed: int = 0, **kw) -> LoadSearch:
    """Run the search against a synthetic server that meets the targets up to `knee`; with `noise`, a
    run's verdict flips with that probability."""
    s = LoadSearch(**kw)
    rng = random.Random(seed)
    while (load := s.next_load()) is not None:
        meets = load <= knee
        s.record(load, (not meets) if rng.random() < noise else meets)
    return s


@pytest.mark.parametrize("knee", [1, 5, 6, 37, 100, 255])
def test_concurrency_bracket_is_found_exactly(knee):
    r = search(knee, axis="concurrency", low=1, high=256, resolution=0.0, max_probes=24).result()
    assert r["closed"] and r["slo_max_load"] == knee and r["bracket_high"] == knee + 1


def test_the_bracket_stops_within_the_resolution():
    r = search(100, axis="concurrency", low=1, high=256, resolution=0.1).result()
    assert r["closed"] and r["bracket_low"] <= 100 < r["bracket_high"]
    assert r["bracket_high"] - r["bracket_low"] <= max(1, int(r["bracket_low"] * 0.1))


def test_rate_axis_bisects_floats():
    r = search(3.3, axis="rate", low=0.5, high=64, resolution=0.05).result()
    assert r["closed"] and r["bracket_low"] <= 3.3 < r["bracket_high"]
    assert (r["bracket_high"] - r["bracket_low"]) <= 0.05 * r["bracket_low"]


def test_nothing_meets_and_everything_meets():
    none = search(0, axis="concurrency", low=1, high=64).result()
    assert none["slo_max_load"] == 0.0 and none["bracket_high"] == 1.0 and none["probes"] == 1
    every = search(10_000, axis="concurrency", low=1, high=64).result()
    assert every["slo_max_load"] == 64.0 and every["bracket_high"] is None and every["capped_at_high"]


def test_the_lower_end_is_confirmed_and_boundary_probes_repeated():
    s = search(37, axis="concurrency", low=1, high=256, repeats=2)
    r = s.result()
    assert len(s.runs[r["slo_max_load"]]) >= 2 and all(s.runs[r["slo_max_load"]])
    # galloping probes far below the knee ran once each
    assert s.runs[1.0] == [True] and s.runs[16.0] == [True]


def test_a_noisy_pass_at_the_top_of_the_gallop_is_not_taken():
    """A load that passed once by noise and fails its confirmation moves the bracket down."""
    s = LoadSearch(axis="concurrency", low=1, high=8, repeats=2, resolution=0.0)
    verdicts = {1: [True], 2: [True], 4: [True, False], 8: [False], 6: [False], 5: [False], 3: [True, True]}
    while (load := s.next_load()) is not None:
        s.record(load, verdicts[int(load)].pop(0))
    r = s.result()
    assert r["slo_max_load"] == 3.0 and r["bracket_high"] == 4.0 and r["closed"]


def test_majority_of_three_survives_noise_in_most_seeds():
    found = [
        search(37, noise=0.1, seed=i, axis="concurrency", low=1, high=256, repeats=3, max_probes=40).result()[
            "slo_max_load"
        ]
        for i in range(40)
    ]
    close = sum(1 for f in found if 33 <= f <= 40)
    assert close >= 30, found


def test_max_probes_bounds_the_search():
    s = search(37, axis="concurrency", low=1, high=256, max_probes=5)
    r = s.result()
    assert r["probes"] == 5 and not r["closed"] and r["slo_max_load"] == 16.0


# ------------------------------------------------------------------------------------ a real trial
def _knee_trial(tiny_model, tmp_path, search):
    """A trial on a trivial server whose tokens wait 400 ms once more than 6 requests run at once."""
    import sys

    from tests.conftest import small_study
    from workbench.spec import StudySpec
    from workbench.trials.orchestrator.run import run_trial

    trivial = f"{sys.executable} -m workbench.engines.server.trivial --port {{port}} --mode knee:6:400 --delay-ms 20"
    data = small_study(tiny_model, engine="openai")
    data["engine_options"] = {"command": trivial}
    data["search_space"] = {"max_batch_size": 4}
    data["workload"] = {
        "num_requests": 8,
        "warmup_requests": 0,
        "input_len": 4,
        "output_len": 4,
        "sweep": {"search": search, "requests_per_load": 2, "min_requests": 8},
    }
    # TPOT is 20 ms below the knee and 420 ms above it: the target sits far from both
    data["slo"] = {"ttft_ms_p95": 60_000, "tpot_ms_p95": 150}
    data["trial"] = {**data.get("trial", {}), "device": "cpu", "timeout_s": 600}
    return run_trial(StudySpec.model_validate(data), out_dir=tmp_path / "t")


def test_a_trial_finds_the_knee_of_a_server_whose_latency_rises_with_load(tiny_model, tmp_path):
    res = _knee_trial(tiny_model, tmp_path, {"concurrency": [1, 64], "resolution": 0.0})
    assert res.status == "COMPLETE", res.failure
    m = res.metrics
    assert m["slo_max_load"] == 6.0 and m["slo_bracket_high"] == 7.0, res.bench["sweep"]["search"]
    search = res.bench["sweep"]["search"]
    assert search["closed"] and search["probes"] == m["slo_search_probes"] == len(
        res.bench["sweep"]["points"]
    )
    loads = [h["load"] for h in search["history"]]
    assert loads[:4] == [1.0, 2.0, 4.0, 8.0] and loads.count(6.0) == 2  # gallop, then 6 confirmed twice
    assert m["slo_max_load_output_tok_s"] > 0 and m["slo_max_load_goodput_output_tok_s"] > 0
    # the trial's headline is the load it found, not the last (failing) probe
    assert res.bench["world_info"] is not None and m["tpot_ms_p95"] < 150


def test_a_load_search_needs_service_targets(tiny_model, tmp_path):
    from tests.conftest import small_study
    from workbench.spec import StudySpec

    data = small_study(tiny_model, engine="openai")
    data["engine_options"] = {"command": "x --port {port}"}
    data["workload"] = {"sweep": {"search": {"concurrency": [1, 8]}}}
    with pytest.raises(ValueError, match="add an `slo:` section"):
        StudySpec.model_validate(data)
    data["slo"] = {"tpot_ms_p95": 50}
    data["workload"] = {"sweep": {"search": {"concurrency": [8, 1]}}}
    with pytest.raises(ValueError, match="0 < low <= high"):
        StudySpec.model_validate(data)
    data["workload"] = {"sweep": {"search": {"concurrency": [1, 8]}, "concurrency": [1, 2]}}
    with pytest.raises(ValueError, match="exactly one of"):
        StudySpec.model_validate(data)
