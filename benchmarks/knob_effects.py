"""Knob effects on the tiny model: throughput, latency and memory over >= 3 values of each knob.

One knob moves at a time from a reference configuration; each trial runs in its own worker with
`workload.repeats` measured runs, and the median of those runs is reported. The point is the
direction each knob moves things on this machine, not absolute speed (the model is tiny).
"""

from __future__ import annotations

import statistics
import sys

from _common import ROOT, save

from workbench.spec import load_spec
from workbench.trials.orchestrator.run import run_trial

REFERENCE = {"max_batch_size": 64, "kv_cache_fraction": 0.9, "max_num_tokens": 512, "quantization": "none"}
SWEEPS = {
    "max_batch_size": [1, 4, 16, 64],
    "kv_cache_fraction": [0.02, 0.1, 0.9],
    "max_num_tokens": [32, 128, 512, 2048],
    "quantization": ["none", "int8", "int4_intx", "float8"],
}
OVERRIDES = {"workload.num_requests": 16, "workload.repeats": 5}


def main() -> None:
    spec = load_spec(ROOT / "studies" / "quickstart.yaml", OVERRIDES)
    rows = []
    for knob, values in SWEEPS.items():
        for v in values:
            res = run_trial(spec, {**REFERENCE, knob: v})
            if res.status != "COMPLETE":
                rows.append({"knob": knob, "value": v, "status": res.status, "failure": res.failure.message})
                print(knob, v, res.status, res.failure.message)
                continue
            runs = res.bench["repeats"]["runs"]
            m = res.metrics
            row = {
                "knob": knob,
                "value": v,
                "status": res.status,
                "output_tok_s_median": statistics.median(r["output_tok_s"] for r in runs),
                "output_tok_s_cv": m["output_tok_s_cv"],
                "ttft_ms_p50_median": statistics.median(r["ttft_ms_p50"] for r in runs),
                "tpot_ms_p50_median": statistics.median(r["tpot_ms_p50"] for r in runs),
                "peak_memory_gb": m["peak_memory_gb"],
                "weights_gb": m["weights_gb"],
                "kv_cache_tokens": m["kv_cache_tokens"],
                "kv_cache_gb": m["kv_cache_gb"],
                "avg_concurrency": res.bench["request_info"]["avg_num_concurrent_requests"],
            }
            rows.append(row)
            print(
                f"{knob}={v}: {row['output_tok_s_median']:.0f} tok/s (CV {row['output_tok_s_cv']:.1%}), "
                f"TTFT p50 {row['ttft_ms_p50_median']:.0f} ms, TPOT p50 {row['tpot_ms_p50_median']:.1f} ms, "
                f"peak {row['peak_memory_gb'] * 1024:.0f} MiB, weights {row['weights_gb'] * 1024:.2f} MiB, "
                f"KV {row['kv_cache_tokens']:.0f} tok, concurrency {row['avg_concurrency']:.1f}",
                flush=True,
            )
    print(save("knob_effects", {"reference": REFERENCE, "overrides": OVERRIDES, "rows": rows}))


if __name__ == "__main__":
    sys.exit(main())
