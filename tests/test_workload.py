"""Workloads become the same requests for the same seed; datasets in trtllm-bench's format or plain text."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest

from workbench.spec import WorkloadSpec
from workbench.trials.workload import arrival_offsets, make_requests


def test_synthetic_lengths_and_determinism():
    w = WorkloadSpec.model_validate(
        {
            "input_len": {"dist": "uniform", "min": 5, "max": 9},
            "output_len": {"dist": "normal", "mean": 20, "std": 5, "min": 10, "max": 25},
        }
    )
    a = make_requests(w, 200, vocab_size=50, special_ids={0, 1, 2})
    b = make_requests(w, 200, vocab_size=50, special_ids={0, 1, 2})
    assert [r.input_ids for r in a] == [r.input_ids for r in b]
    assert all(5 <= len(r.input_ids) <= 9 for r in a)
    assert all(10 <= r.max_new_tokens <= 25 for r in a)
    assert not any(t in (0, 1, 2) for r in a for t in r.input_ids)
    assert all(r.ignore_eos for r in a)
    c = make_requests(w, 200, vocab_size=50, seed=99)
    assert [r.input_ids for r in c] != [r.input_ids for r in a]


def test_arrivals():
    burst = WorkloadSpec.model_validate({"arrival": "burst"})
    assert arrival_offsets(burst, 5) == [0.0] * 5
    rate = WorkloadSpec.model_validate({"arrival": {"mode": "rate", "rate": 50.0}})
    offs = arrival_offsets(rate, 2000)
    gaps = [b - a for a, b in zip(offs, offs[1:], strict=False)]
    assert offs[0] == 0.0 and all(g >= 0 for g in gaps)
    assert statistics.mean(gaps) == pytest.approx(1 / 50.0, rel=0.1)
    assert (
        arrival_offsets(
            WorkloadSpec.model_validate({"arrival": {"mode": "concurrency", "concurrency": 3}}), 4
        )
        is None
    )


def test_trtllm_bench_dataset(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"task_id": 0, "input_ids": [5, 6, 7], "output_tokens": 4},
                {"task_id": 1, "input_ids": [8, 9], "output_tokens": 6},
            ]
        )
        + "\n"
    )
    w = WorkloadSpec.model_validate({"dataset": {"path": str(p)}, "output_len": 99})
    reqs = make_requests(w, 3, vocab_size=10, dataset_path=p)
    assert [r.input_ids for r in reqs] == [[5, 6, 7], [8, 9], [5, 6, 7]]
    assert [r.max_new_tokens for r in reqs] == [4, 6, 4]


def test_text_dataset_is_tokenized_and_truncated(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    p = tmp_path / "q.jsonl"
    p.write_text(json.dumps({"question": "How many apples does Janet buy each day?"}) + "\n")
    w = WorkloadSpec.model_validate(
        {
            "dataset": {"path": str(p), "format": "text", "field": "question", "max_input_len": 4},
            "output_len": 7,
        }
    )
    (r,) = make_requests(w, 1, vocab_size=0, tokenizer=tok, dataset_path=p)
    full = tok("How many apples does Janet buy each day?")["input_ids"]
    assert r.input_ids == full[-4:] and r.max_new_tokens == 7


def test_dataset_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"input_ids": [1]}\n{not json}\n')
    w = WorkloadSpec.model_validate({"dataset": {"path": str(p)}})
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        make_requests(w, 2, vocab_size=10, dataset_path=p)
    p.write_text('{"text": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: a trtllm-bench line needs 'prompt' or 'input_ids'"):
        make_requests(w, 1, vocab_size=10, dataset_path=p)


# --------------------------------------------------------------------------- sweep point sizes (issue 19)
def _sweep(**sweep):
    return WorkloadSpec.model_validate({"num_requests": 256, "sweep": sweep}).sweep


def test_sweep_point_sizes_follow_requests_per_load_at_every_load():
    loads = [1, 8, 32, 64, 128, 256]
    per = _sweep(concurrency=loads, requests_per_load=8)
    assert [per.requests_at(x, 256) for x in per.loads] == [8, 64, 256, 512, 1024, 2048]
    two = _sweep(concurrency=loads, requests_per_load=2)  # min_requests (8) lifts concurrency 1
    assert [two.requests_at(x, 256) for x in two.loads] == [8, 16, 64, 128, 256, 512]
    floor = _sweep(concurrency=loads, requests_per_load=2, min_requests=32)
    assert [floor.requests_at(x, 256) for x in floor.loads] == [32, 32, 64, 128, 256, 512]
    rate = _sweep(rate=[0.5, 4.0, 16.0], requests_per_load=30)  # 30 s of arrivals: 15 -> 15, 120, 480
    assert [rate.requests_at(x, 256) for x in rate.loads] == [15, 120, 480]
    assert _sweep(rate=[0.1]).requests_at(0.1, 256) == 256  # neither key: num_requests
    plain = _sweep(concurrency=loads)
    assert [plain.requests_at(x, 256) for x in plain.loads] == [256] * 6
    timed = _sweep(concurrency=loads, duration_s=30)  # no cap: the time budget ends each point
    assert timed.requests_at(256, 256) is None and timed.min_requests == 8


def test_a_time_budgeted_point_draws_a_prefix_of_the_same_sequence():
    from workbench.trials.workload import Drawn, offset_stream, request_stream

    w = WorkloadSpec.model_validate(
        {
            "input_len": {"dist": "uniform", "min": 3, "max": 30},
            "output_len": {"dist": "uniform", "min": 2, "max": 9},
        }
    )
    a = Drawn(request_stream(w, vocab_size=50, seed=7, prefix="p"), 1000)
    b = Drawn(request_stream(w, vocab_size=50, seed=7, prefix="p"), None)
    first = [a[i] for i in range(40)]
    assert [(r.id, r.input_ids, r.max_new_tokens) for r in first] == [
        (b[i].id, b[i].input_ids, b[i].max_new_tokens) for i in range(40)
    ]
    assert len({len(r.input_ids) for r in first}) > 1 and len(a) == 1000
    with pytest.raises(IndexError):
        a[1000]
    other = request_stream(w, vocab_size=50, seed=8, prefix="p")
    assert [next(other).input_ids for _ in range(5)] != [r.input_ids for r in first[:5]]
    rate = WorkloadSpec.model_validate({"arrival": {"mode": "rate", "rate": 5.0}})
    offs = offset_stream(rate, seed=3)
    assert [next(offs) for _ in range(50)] == arrival_offsets(rate, 50, seed=3)  # the same arrivals
    assert (
        offset_stream(WorkloadSpec.model_validate({"arrival": {"mode": "concurrency", "concurrency": 2}}))
        is None
    )


class _InstantRunner:
    """Finishes every submitted request at once: issuing is all that drive decides."""

    def __init__(self):
        self.pending, self.submitted = [], []

    def submit(self, req):
        self.pending.append(req)
        self.submitted.append(req.id)

    def collect(self, timeout):
        from workbench.engines.base import RequestRecord

        out, self.pending = self.pending, []
        return [
            RequestRecord(id=r.id, input_len=len(r.input_ids), arrival=0.0, token_times=[0.1], finish=0.1)
            for r in out
        ]


def test_drive_stops_issuing_after_the_budget_and_issues_at_least_min_requests():
    from workbench.engines.base import Request
    from workbench.trials.worker.bench import drive
    from workbench.trials.workload import Drawn, offset_stream

    reqs = [Request(f"r{i}", [1, 2], 1) for i in range(100)]
    r = _InstantRunner()
    # concurrency 2, a budget already over once the first requests are in: exactly min_requests are issued
    recs = drive(r, reqs, None, 2, budget_s=1e-9, min_requests=3)
    assert [x.id for x in recs] == ["r0", "r1", "r2"] == r.submitted
    assert len(drive(_InstantRunner(), reqs, None, 2)) == 100  # no budget: the whole list
    # the rate axis: a request is issued when its arrival offset is within the budget, so the seed decides
    w = WorkloadSpec.model_validate({"arrival": {"mode": "rate", "rate": 400.0}})
    expected = sum(1 for o in arrival_offsets(w, 1000, seed=5) if o < 0.1)
    stream = (Request(f"q{i}", [1], 1) for i in itertools.count())
    recs = drive(
        _InstantRunner(), Drawn(stream, None), Drawn(offset_stream(w, seed=5), None), None, budget_s=0.1
    )
    assert len(recs) == expected and 10 < expected < 100
    few = drive(_InstantRunner(), reqs[:5], arrival_offsets(w, 5, seed=5), None, budget_s=0.1)
    assert len(few) == 5  # the list ends before the budget: whichever ends first


def test_sweep_validation_errors_name_the_key(tmp_path, tiny_model):
    import yaml

    from tests.conftest import small_study
    from workbench.spec import SpecError, load_spec

    def error(**sweep):
        p = tmp_path / "s.yaml"
        p.write_text(
            yaml.safe_dump(small_study(tiny_model, **{"workload.sweep": {"concurrency": [1, 4], **sweep}}))
        )
        with pytest.raises(SpecError) as e:
            load_spec(p)
        return str(e.value)

    assert "workload.sweep.min_requests: got 0; Input should be greater than or equal to 1" in error(
        requests_per_load=2, min_requests=0
    )
    assert "workload.sweep.duration_s: got -5; Input should be greater than 0" in error(duration_s=-5)
    assert "workload.sweep.requests_per_load: got 0; Input should be greater than 0" in error(
        requests_per_load=0
    )
    assert "workload.sweep.duration_s: got true; a number is expected, not a boolean" in error(
        duration_s=True
    )
    assert "workload.sweep: min_requests applies only with requests_per_load or duration_s" in error(
        min_requests=16
    )
    big = error(requests_per_load=1_000_000)  # 4 M requests at concurrency 4 x 40 tokens
    assert "workload: (the largest sweep point's requests + warmup_requests) x the longest input_len" in big
