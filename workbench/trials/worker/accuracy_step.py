"""The accuracy step of a trial: GSM8K measured on the trial's engine, or lent by an earlier trial.

A reused measurement is gated with the plan's `AccuracyGate` like a fresh one, so the pass mark is
computed in one place (`workbench.accuracy.gate`). lm-eval is imported only when a trial measures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.engines.runner import Runner
from workbench.trials.plan import TrialPlan
from workbench.trials.result import TrialResult


def reuse_accuracy(plan: TrialPlan) -> tuple[dict[str, Any], dict[str, float]]:
    """The metrics of an earlier trial with the same weights, gated against this trial's gate."""
    reuse, gate = plan.accuracy_reuse, plan.accuracy_gate
    assert reuse is not None
    metrics = dict(reuse.metrics)
    info: dict[str, Any] = {"reused_from_trial": reuse.trial, "accuracy_key": reuse.accuracy_key}
    if gate is not None:
        n = int(metrics["gsm8k_n"])
        info["gate"] = gate.record(metrics["gsm8k_score"], n)
        metrics["gsm8k_gate_threshold"] = info["gate"]["threshold"]
        metrics["gsm8k_gate_passed"] = float(info["gate"]["decision"] == "pass")
    return info, metrics


def measure_accuracy(
    plan: TrialPlan, runner: Runner, result: TrialResult
) -> tuple[dict[str, Any], dict[str, float]]:
    """GSM8K through lm-eval on this trial's runner (sequentially gated when the plan has a gate)."""
    from workbench.accuracy import WorkbenchLM, evaluate, write_samples

    acc, gate = plan.accuracy, plan.accuracy_gate
    assert acc is not None
    server = runner.server()
    if server is not None:  # a server engine: lm-eval's own OpenAI client against it
        from workbench.accuracy.server import server_lm

        lm = server_lm(server, runner.tokenizer, acc.max_gen_toks, acc.max_input_len)
    else:
        lm = WorkbenchLM(runner, max_gen_toks=acc.max_gen_toks, max_input_len=acc.max_input_len)
    res = evaluate(
        lm,
        task=acc.task,
        data_path=plan.accuracy_data_path,
        limit=acc.limit,
        num_fewshot=acc.num_fewshot,
        fewshot_seed=acc.fewshot_seed,
        apply_chat_template=acc.apply_chat_template,
        fewshot_as_multiturn=acc.fewshot_as_multiturn,
        gate=gate,
        chunk=gate.chunk if gate else 100,
    )
    path = write_samples(res, Path(plan.out_dir) / "gsm8k_samples.jsonl")
    result.files["gsm8k_samples"] = str(path)
    metrics = res.metrics()
    if plan.accuracy_reuse is not None and acc.reuse == "check":
        metrics["gsm8k_score_reuse_delta"] = res.score - plan.accuracy_reuse.metrics["gsm8k_score"]
    info = {
        "protocol": res.lm_eval_config,
        "n": res.n,
        "n_planned": res.n_total,
        "gate": res.gate,
        "score": res.score,
        "seconds": res.seconds,
    }
    return info, metrics
