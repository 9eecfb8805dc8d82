"""GSM8K wall time on 100 samples: the workbench adapter against lm-eval's stock `hf` model.

Same tiny model, same 100 questions, lm-eval's stock 5-shot gsm8k task with 256 new tokens at most.
The stock HFLM runs at its default batch size (1); the workbench adapter hands all requests to the
`hf` engine's continuous batching at once. Both continuations are compared one by one.
Target: speed-up >= 3x with the same scores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import ROOT, save

DATA = ROOT.parent / "shared" / "data" / "gsm8k"
N = 100


def main() -> None:
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from workbench import accuracy as A
    from workbench.engines.base import Artifact
    from workbench.engines.hf import HFEngine
    from workbench.knobs import split_knobs
    from workbench.spec import load_spec
    from workbench.trials.orchestrator.planning import make_plan

    model = ROOT / "models" / "tiny-llama"
    # about 32 five-shot requests (1,200 prompt tokens each on this tokenizer) in flight; a larger cache
    # makes every CPU step slower (the sdpa mask is sized by cache tokens x step tokens)
    spec = load_spec(ROOT / "studies" / "quickstart.yaml", {"trial.cpu_kv_budget_gb": 0.1})
    knobs = {**HFEngine.default_knobs(), "max_batch_size": 64, "max_num_tokens": 512, "page_size": 32}
    from workbench.trials.orchestrator.environment import detect_device

    plan = make_plan(spec, "speed", knobs, detect_device("cpu"), Path("/tmp"), Path("/tmp"))
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    t = time.perf_counter()
    runner = HFEngine(plan.open_context()).open(Artifact(model, None, {}), runtime)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = A.evaluate(A.WorkbenchLM(runner, max_gen_toks=256), data_path=DATA, limit=N)
    ours_s = time.perf_counter() - t
    runner.close()

    t = time.perf_counter()
    hf = HFLM(
        pretrained=str(model), device="cpu", dtype="float32", add_bos_token=True
    )  # default batch size 1
    ref = lm_eval.simple_evaluate(
        model=hf,
        tasks=[A.task_config("gsm8k", DATA)],
        samples={"gsm8k": list(range(N))},
        fewshot_random_seed=0,
        bootstrap_iters=0,
        log_samples=True,
    )
    hf_s = time.perf_counter() - t
    r = ref["results"]["gsm8k"]
    a = {(s["doc_id"], s["filter"]): s["resps"] for s in ours.samples}
    b = {(s["doc_id"], s["filter"]): s["resps"] for s in ref["samples"]["gsm8k"]}
    same = sum(a[k] == b.get(k) for k in a) / len(a)
    out = {
        "n": N,
        "workbench_s": ours_s,
        "workbench_open_s": open_s,
        "hflm_s": hf_s,
        "speedup": hf_s / ours_s,
        "speedup_with_open": hf_s / (ours_s + open_s),
        "workbench_scores": [ours.strict, ours.flexible],
        "hflm_scores": [r["exact_match,strict-match"], r["exact_match,flexible-extract"]],
        "identical_continuations": same,
        "knobs": knobs,
    }
    print(
        f"workbench adapter {ours_s:.1f} s (+{open_s:.1f} s to open the engine), stock HFLM {hf_s:.1f} s: "
        f"speed-up {out['speedup']:.1f}x ({out['speedup_with_open']:.1f}x counting the engine start); "
        f"scores {out['workbench_scores']} vs {out['hflm_scores']}; identical continuations {same:.0%}"
    )
    print(save("gsm8k_speed", out))


if __name__ == "__main__":
    sys.exit(main())
