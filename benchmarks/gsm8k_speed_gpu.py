"""GSM8K wall time on 100 questions on a GPU: the workbench adapter against lm-eval's stock `hf` model.

Run on the H200 through the device tool (see docs/benchmarks.md for the exact command). No weights
can be downloaded there, so the model is Llama-3.2-1B's architecture with random bf16 weights and the
project's tiny tokenizer (vocabulary 1,024): speeds are real, scores are meaningless (both 0).
`--side workbench` or `--side hflm` runs one side (each fits in one device call); the results are
JSON files under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_model(out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from workbench.tiny_model import make_tiny_model

    tok_dir = make_tiny_model(out.parent / "tiny")
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["workbench", "hflm"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--start", type=int, default=0, help="first question (the stock side may run in parts)")
    args = ap.parse_args()
    model = make_model(Path("/tmp/gsm8k-gpu/model"))
    from workbench import accuracy as A

    t = time.perf_counter()
    if args.side == "workbench":
        from workbench.engines.base import Artifact
        from workbench.engines.hf import HFEngine
        from workbench.knobs import split_knobs
        from workbench.spec import validate_spec
        from workbench.trials.orchestrator.environment import detect_device
        from workbench.trials.orchestrator.planning import make_plan

        spec = validate_spec(
            {
                "name": "gpu",
                "model": {"path": str(model), "dtype": "bfloat16"},
                "engine": "hf",
                "search_space": {"max_batch_size": 128},
                "trial": {"device": "cuda"},
            }
        )
        knobs = {
            **HFEngine.default_knobs(),
            "max_batch_size": 128,
            "max_num_tokens": 8192,
            "kv_cache_fraction": 0.5,
        }
        plan = make_plan(spec, "gpu", knobs, detect_device("cuda"), Path("/tmp"), Path("/tmp"))
        _, runtime = split_knobs(HFEngine.knobs, knobs)
        runner = HFEngine(plan.open_context()).open(Artifact(model, None, {}), runtime)
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        res = A.evaluate(A.WorkbenchLM(runner, max_gen_toks=256), data_path=args.data, limit=args.n)
        out = {
            "side": "workbench",
            "seconds": time.perf_counter() - t,
            "open_s": open_s,
            "knobs": knobs,
            "engine_config": runner.resolved_config,
            "strict": res.strict,
            "flexible": res.flexible,
            "resps": {f"{s['doc_id']}|{s['filter']}": s["resps"] for s in res.samples},
        }
        runner.close()
    else:
        import lm_eval
        from lm_eval.models.huggingface import HFLM

        hf = HFLM(pretrained=str(model), device="cuda", dtype="bfloat16", add_bos_token=True)  # batch size 1
        ref = lm_eval.simple_evaluate(
            model=hf,
            tasks=[A.task_config("gsm8k", args.data)],
            samples={"gsm8k": list(range(args.start, args.start + args.n))},
            fewshot_random_seed=0,
            bootstrap_iters=0,
            log_samples=True,
        )
        r = ref["results"]["gsm8k"]
        out = {
            "side": "hflm",
            "seconds": time.perf_counter() - t,
            "strict": r["exact_match,strict-match"],
            "flexible": r["exact_match,flexible-extract"],
            "resps": {f"{s['doc_id']}|{s['filter']}": s["resps"] for s in ref["samples"]["gsm8k"]},
        }
    import torch

    out["gpu"] = torch.cuda.get_device_name(0)
    out["torch"] = torch.__version__
    import transformers

    out["transformers"] = transformers.__version__
    Path(args.out).mkdir(parents=True, exist_ok=True)
    out["questions"] = [args.start, args.start + args.n]
    name = f"gsm8k_gpu_{args.side}" + (f"_{args.start}" if args.side == "hflm" else "")
    (Path(args.out) / f"{name}.json").write_text(json.dumps(out, default=float))
    print(args.side, f"{out['seconds']:.1f} s", out["strict"], out["flexible"])


if __name__ == "__main__":
    main()
