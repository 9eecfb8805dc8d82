"""Samples saved by sequential gating, on a configuration that clearly fails and one that clearly passes.

An oracle wrapper around the real `hf` engine answers a chosen share of the GSM8K test questions
correctly (the tiny model itself scores 0), so the true accuracy of each "configuration" is known.
Baseline 74.2 (Llama-3.1-8B-Instruct's bf16 reference), gate = TensorRT-LLM's test at alpha 0.05,
sigma 50 over all 1319 questions; looks every 100 questions. Each case also runs without early
stopping, to show the decision is the same.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from _common import ROOT, save

sys.path.insert(0, str(ROOT))  # the oracle is a test double: tests/oracle.py

DATA = ROOT.parent / "shared" / "data" / "gsm8k"


def main() -> None:
    from tests.oracle import OracleRunner, gsm8k_answers
    from workbench import accuracy as A
    from workbench.engines.base import Artifact
    from workbench.engines.hf import HFEngine
    from workbench.knobs import split_knobs
    from workbench.spec import load_spec
    from workbench.trials.orchestrator.environment import detect_device
    from workbench.trials.orchestrator.planning import make_plan

    spec = load_spec(ROOT / "studies" / "quickstart.yaml", {"trial.cpu_kv_budget_gb": 0.25})
    knobs = {**HFEngine.default_knobs(), "max_batch_size": 128, "max_num_tokens": 1024, "page_size": 32}
    plan = make_plan(spec, "seq", knobs, detect_device("cpu"), Path("/tmp"), Path("/tmp"))
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    runner = HFEngine(plan.open_context()).open(Artifact(ROOT / "models" / "tiny-llama", None, {}), runtime)
    with open(DATA / "test.jsonl") as f:
        qs = [json.loads(line)["question"].strip() for line in f]
    answers = gsm8k_answers(DATA)
    gate = A.AccuracyGate(baseline=74.2, max_drop=0.0, alpha=0.05, beta=0.2, sigma=50.0)
    rows = []
    cases = [("clearly fails (40 % correct)", 0.40), ("clearly passes (95 % correct)", 0.95)]
    if "--borderline" in sys.argv:  # evaluated in full either way: slow, and saves nothing
        cases.append(("borderline (73 % correct)", 0.73))
    for name, share in cases:
        correct = set(random.Random(0).sample(qs, round(share * len(qs))))
        row = {"case": name, "true_score": 100 * len(correct) / len(qs)}
        for seq in (True, False):
            oracle = OracleRunner(runner, answers, correct)
            res = A.evaluate(
                A.WorkbenchLM(oracle, max_gen_toks=1),
                data_path=DATA,
                gate=gate.model_copy(update={"sequential": seq}),
                chunk=100,
            )
            key = "sequential" if seq else "full"
            row[key] = {
                "n_used": res.n,
                "decision": res.gate["decision"],
                "score": res.score,
                "threshold": res.gate["threshold"],
                "seconds": res.seconds,
            }
        row["samples_saved"] = 1 - row["sequential"]["n_used"] / row["full"]["n_used"]
        rows.append(row)
        print(
            f"{name}: sequential {row['sequential']['decision']} after {row['sequential']['n_used']} questions "
            f"({row['sequential']['seconds']:.0f} s), full run {row['full']['decision']} "
            f"(score {row['full']['score']:.1f}, threshold {row['full']['threshold']:.2f}, "
            f"{row['full']['seconds']:.0f} s): {row['samples_saved']:.0%} of the questions saved",
            flush=True,
        )
    runner.close()
    print(save("gsm8k_sequential", {"gate": gate.model_dump(), "chunk": 100, "rows": rows}))


if __name__ == "__main__":
    sys.exit(main())
