"""Turn a workload definition into concrete requests and arrival times (seeded, so reproducible).

Random-token prompts follow trtllm-bench's synthetic datasets (token-norm-dist / token-unif-dist);
a dataset file may instead be in trtllm-bench's own JSON Lines format or plain text.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.engines.base import Request
from workbench.spec import Burst, Concurrency, FixedLen, NormalLen, Rate, UniformLen, WorkloadSpec
from workbench.spec.workload import MAX_REQUESTS


def sample_lengths(dist: FixedLen | UniformLen | NormalLen, n: int, rng: random.Random) -> list[int]:
    if isinstance(dist, FixedLen):
        return [dist.value] * n
    if isinstance(dist, UniformLen):
        return [rng.randint(dist.min, dist.max) for _ in range(n)]
    hi = dist.max if dist.max is not None else 10**9
    return [min(hi, max(dist.min, round(rng.gauss(dist.mean, dist.std)))) for _ in range(n)]


def longest(dist: FixedLen | UniformLen | NormalLen) -> int | None:
    """The longest length a distribution can draw (None for an unbounded normal)."""
    if isinstance(dist, FixedLen):
        return dist.value
    return dist.max


def longest_lengths(w: WorkloadSpec) -> tuple[int | None, int | None]:
    """The longest prompt and output of a workload, for feasibility checks; None where a dataset decides."""
    if w.dataset is not None:
        return w.dataset.max_input_len, None
    return longest(w.input_len), longest(w.output_len)


def make_requests(
    w: WorkloadSpec,
    n: int,
    *,
    vocab_size: int,
    tokenizer: Any = None,
    dataset_path: Path | None = None,
    seed: int | None = None,
    prefix: str = "req",
    special_ids: set[int] | None = None,
) -> list[Request]:
    """`n` requests of the workload. Random prompts avoid special-token ids."""
    rng = random.Random(w.seed if seed is None else seed)
    out_lens = sample_lengths(w.output_len, n, rng)
    if w.dataset is not None:
        prompts = _dataset_prompts(w, dataset_path or Path(w.dataset.path), tokenizer, n)
        reqs = []
        for i, (ids, osl) in enumerate(prompts):
            reqs.append(Request(f"{prefix}-{i}", ids, osl if osl is not None else out_lens[i], w.ignore_eos))
        return reqs
    in_lens = sample_lengths(w.input_len, n, rng)
    avoid = special_ids or set()
    pool = [t for t in range(vocab_size) if t not in avoid]
    return [
        Request(f"{prefix}-{i}", [rng.choice(pool) for _ in range(isl)], osl, w.ignore_eos)
        for i, (isl, osl) in enumerate(zip(in_lens, out_lens, strict=False))
    ]


def _dataset_prompts(
    w: WorkloadSpec, path: Path, tokenizer: Any, n: int
) -> list[tuple[list[int], int | None]]:
    rows = _dataset_rows(path)
    return [_row_prompt(w, path, *rows[i % len(rows)], tokenizer) for i in range(n)]


def _dataset_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The file's (line number, row) pairs."""
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    if not rows:
        raise ValueError(f"{path}: the dataset holds no requests")
    return rows


def _row_prompt(
    w: WorkloadSpec, path: Path, lineno: int, row: dict[str, Any], tokenizer: Any
) -> tuple[list[int], int | None]:
    """One row's prompt token ids and its output length (None: the workload's own)."""
    ds = w.dataset
    assert ds is not None
    osl = None
    if ds.format == "trtllm-bench":
        if "input_ids" in row:
            ids = list(row["input_ids"])
        elif "prompt" in row:
            ids = tokenizer(row["prompt"])["input_ids"]
        else:
            raise ValueError(f"{path}:{lineno}: a trtllm-bench line needs 'prompt' or 'input_ids'")
        osl = row.get("output_tokens")
    else:
        if ds.field not in row:
            raise ValueError(f"{path}:{lineno}: no field {ds.field!r} (fields: {', '.join(row)})")
        ids = tokenizer(str(row[ds.field]))["input_ids"]
    if ds.max_input_len is not None:
        ids = ids[-ds.max_input_len :]
    return ids, osl


def arrival_offsets(w: WorkloadSpec, n: int, seed: int | None = None) -> list[float] | None:
    """Seconds after the start at which each request arrives; None for fixed concurrency."""
    if isinstance(w.arrival, Burst):
        return [0.0] * n
    if isinstance(w.arrival, Rate):
        rng = random.Random((w.seed if seed is None else seed) + 1)
        t, out = 0.0, []
        for _ in range(n):
            out.append(t)
            t += rng.expovariate(w.arrival.rate)
        return out
    assert isinstance(w.arrival, Concurrency)
    return None


def measured_requests(w: WorkloadSpec, rep: int = 0, **common: Any) -> list[Request]:
    """The requests repeat `rep` of a trial measures, exactly (seed `w.seed + rep`, same order and
    ids): what a vendor tool must replay for its numbers to stand beside the trial's."""
    return make_requests(w, w.num_requests, seed=w.seed + rep, prefix=f"run{rep}", **common)


class Drawn:
    """A sequence drawn from an iterator as far as it is read (`requests[i]`, `offsets[i]`), at most
    `cap` long (None: without end): what a time-budgeted sweep point issues is decided while it runs."""

    def __init__(self, items: Iterator[Any], cap: int | None) -> None:
        self._items, self._got, self.cap = items, [], cap

    def __len__(self) -> int:
        return self.cap if self.cap is not None else MAX_REQUESTS

    def __getitem__(self, i: int) -> Any:
        if i >= len(self):
            raise IndexError(i)
        while len(self._got) <= i:
            self._got.append(next(self._items))
        return self._got[i]


def request_stream(
    w: WorkloadSpec,
    *,
    vocab_size: int,
    tokenizer: Any = None,
    dataset_path: Path | None = None,
    seed: int | None = None,
    prefix: str = "req",
    special_ids: set[int] | None = None,
) -> Iterator[Request]:
    """The workload's requests one at a time, each drawn whole (output length, prompt) before the next,
    so the first k are the same however many are read: the requests of a time-budgeted sweep point."""
    rng = random.Random(w.seed if seed is None else seed)
    path = dataset_path or (Path(w.dataset.path) if w.dataset is not None else None)
    rows = _dataset_rows(path) if w.dataset is not None and path is not None else None
    avoid = special_ids or set()
    pool = [t for t in range(vocab_size) if t not in avoid] if rows is None else []
    for i in itertools.count():
        osl = sample_lengths(w.output_len, 1, rng)[0]
        if rows is not None and path is not None:
            ids, row_osl = _row_prompt(w, path, *rows[i % len(rows)], tokenizer)
            yield Request(f"{prefix}-{i}", ids, row_osl if row_osl is not None else osl, w.ignore_eos)
            continue
        isl = sample_lengths(w.input_len, 1, rng)[0]
        yield Request(f"{prefix}-{i}", [rng.choice(pool) for _ in range(isl)], osl, w.ignore_eos)


def offset_stream(w: WorkloadSpec, seed: int | None = None) -> Iterator[float] | None:
    """`arrival_offsets` without end (the same values, one by one); None for fixed concurrency."""
    if isinstance(w.arrival, Concurrency):
        return None
    if isinstance(w.arrival, Burst):
        return itertools.repeat(0.0)
    rng = random.Random((w.seed if seed is None else seed) + 1)
    return itertools.accumulate((rng.expovariate(w.arrival.rate) for _ in itertools.count()), initial=0.0)
