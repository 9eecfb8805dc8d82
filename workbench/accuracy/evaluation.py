"""GSM8K on a workbench engine through lm-eval, with TensorRT-LLM's protocol and its gate.

`evaluate` runs lm-eval's stock gsm8k task (by default 5-shot, few-shot seed 0, no chat template;
score = mean of strict-match and flexible-extract x 100), from the hub or local JSONL. With a gate it
runs the test set in chunks and stops once the gate is clearly passed or failed
(`gate.sequential_decision`). Each step is its own function: the chunk plan, one chunk through
`simple_evaluate`, the hub-error mapping, flattening the samples, the early decision, the result.
(The module is not called `evaluate.py`: a submodule of that name would shadow the function
`workbench.accuracy.evaluate` once imported.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lm_eval

from workbench.accuracy.gate import AccuracyGate, min_detectable_effect, sequential_decision
from workbench.accuracy.results import AccuracyResult, PerDoc, mean_stderr, score_of
from workbench.accuracy.tasks import FILTERS, hub_error, num_test_docs, task_config, task_manager

#: what each logged sample keeps of lm-eval's record
SAMPLE_KEYS = ("doc_id", "filter", "exact_match", "target", "filtered_resps", "resps", "arguments")
#: questions per look when neither the call nor a gate says
DEFAULT_CHUNK = 100


@dataclass(frozen=True)
class EvalProtocol:
    """How the questions are asked: the task, few-shot count and seed, chat template, where the data is."""

    task: str = "gsm8k"
    data_path: str | Path | None = None
    num_fewshot: int | None = None
    fewshot_seed: int = 0
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False

    def record(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """The protocol as the result records it (`lm_eval_config`)."""
        return {
            "task": self.task,
            "num_fewshot": self.num_fewshot if self.num_fewshot is not None else cfg.get("num_fewshot"),
            "fewshot_seed": self.fewshot_seed,
            "apply_chat_template": self.apply_chat_template,
            "data": str(self.data_path) if self.data_path else "openai/gsm8k (hub)",
        }


@dataclass(frozen=True)
class ChunkPlan:
    """The questions 0..n_total-1 in looks of `chunk` (one look of all when the gate is not sequential)."""

    n_total: int
    chunk: int
    sequential: bool

    @property
    def looks(self) -> int:
        return max(1, math.ceil(self.n_total / self.chunk)) if self.sequential else 1

    def chunks(self) -> Iterator[list[int]]:
        size = max(1, self.chunk if self.sequential else self.n_total)
        for start in range(0, self.n_total, size):
            yield list(range(start, min(start + size, self.n_total)))


@dataclass
class _Progress:
    """Per-question results and samples so far, the looks taken, and an early decision once made."""

    per_doc: PerDoc = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    looks: int = 0
    decision: str | None = None


def as_gate(gate: AccuracyGate | Mapping[str, Any] | None) -> AccuracyGate | None:
    """The typed gate; a dict (the form plans carried before AccuracyGate) is validated, max_drop 0 if absent."""
    if gate is None or isinstance(gate, AccuracyGate):
        return gate
    return AccuracyGate.model_validate({"max_drop": 0.0, **gate})


def evaluate(
    lm: Any,
    *,
    task: str = "gsm8k",
    data_path: str | Path | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    fewshot_seed: int = 0,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = False,
    gate: AccuracyGate | Mapping[str, Any] | None = None,
    chunk: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> AccuracyResult:
    """Score `lm` on GSM8K. With a `gate`, the test set is evaluated in chunks (`chunk`, else the
    gate's) and stops once the gate is clearly passed or failed (unless `gate.sequential` is off)."""
    t0 = time.perf_counter()
    g = as_gate(gate)
    proto = EvalProtocol(
        task, data_path, num_fewshot, fewshot_seed, apply_chat_template, fewshot_as_multiturn
    )
    manager = task_manager()
    cfg = task_config(task, data_path, manager)
    n_docs = num_test_docs(data_path)
    plan = ChunkPlan(
        min(limit or n_docs, n_docs),
        chunk or (g.chunk if g else DEFAULT_CHUNK),
        g is not None and g.sequential,
    )
    done = _Progress()
    for ids in plan.chunks():
        out = _run_chunk(lm, cfg, ids, proto, manager)
        _collect(out["samples"][cfg["task"]], done)
        if on_chunk:
            on_chunk(len(done.per_doc), plan.n_total)
        done.decision = _early_decision(g, plan, done)
        if done.decision is not None:
            break
    return _result(cfg, proto, plan, done, g, time.perf_counter() - t0)


def _run_chunk(lm: Any, cfg: dict[str, Any], ids: list[int], proto: EvalProtocol, manager: Any) -> dict:
    """One `simple_evaluate` over the questions `ids`, samples logged, lm-eval's stderr off."""
    try:
        return lm_eval.simple_evaluate(
            model=lm,
            tasks=[dict(cfg)],
            num_fewshot=proto.num_fewshot,
            samples={cfg["task"]: ids},
            log_samples=True,
            apply_chat_template=proto.apply_chat_template,
            fewshot_as_multiturn=proto.fewshot_as_multiturn if proto.apply_chat_template else False,
            fewshot_random_seed=proto.fewshot_seed,
            random_seed=0,
            bootstrap_iters=0,
            verbosity="WARNING",
            task_manager=manager,
        )
    except Exception as e:
        clear = hub_error(e, proto.data_path)
        if clear is not None:
            raise clear from e
        raise


def _collect(task_samples: list[dict[str, Any]], done: _Progress) -> None:
    """Flatten lm-eval's samples: exact match per question and filter, and the kept sample fields."""
    for s in task_samples:
        done.per_doc.setdefault(s["doc_id"], {})[s["filter"]] = float(s["exact_match"])
        done.samples.append({k: s[k] for k in SAMPLE_KEYS if k in s})
    done.looks += 1


def _early_decision(gate: AccuracyGate | None, plan: ChunkPlan, done: _Progress) -> str | None:
    """'pass' or 'fail' once the sequential test is sure before the last question, else None."""
    n = len(done.per_doc)
    if gate is None or not plan.sequential or n >= plan.n_total:
        return None
    return sequential_decision(
        score_of(done.per_doc), n, gate.threshold(plan.n_total), plan.looks, gate.alpha, gate.sigma
    )


def _result(
    cfg: dict[str, Any],
    proto: EvalProtocol,
    plan: ChunkPlan,
    done: _Progress,
    gate: AccuracyGate | None,
    seconds: float,
) -> AccuracyResult:
    strict, strict_se = mean_stderr([d[FILTERS[0]] for d in done.per_doc.values()])
    flex, flex_se = mean_stderr([d[FILTERS[1]] for d in done.per_doc.values()])
    out = AccuracyResult(
        task=cfg["task"],
        n=len(done.per_doc),
        n_total=plan.n_total,
        strict=strict,
        flexible=flex,
        strict_stderr=strict_se,
        flexible_stderr=flex_se,
        samples=done.samples,
        seconds=seconds,
        lm_eval_config=proto.record(cfg),
    )
    if gate is not None:
        out.gate = _gate_record(gate, plan, done, out.score)
    return out


def _gate_record(gate: AccuracyGate, plan: ChunkPlan, done: _Progress, score: float) -> dict[str, Any]:
    """The gate's record: the pass mark of the planned n (the one the sequential test used), what was used."""
    return gate.record(
        score,
        plan.n_total,
        chunk=plan.chunk,
        n_planned=plan.n_total,
        n_used=len(done.per_doc),
        looks=done.looks,
        stopped_early=done.decision is not None,
        score=score,
        decision=done.decision or gate.decide(score, plan.n_total),
        min_detectable_effect=min_detectable_effect(plan.n_total, gate.alpha, gate.beta, gate.sigma),
    )
