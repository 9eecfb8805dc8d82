"""Workloads become the same requests for the same seed; datasets in trtllm-bench's format or plain text."""

from __future__ import annotations

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
