"""Harness overhead: output tokens/s through `workbench trial` against a direct transformers call.

Same model, prompts and knobs; the two are run alternately in one session, N times each, each in a
fresh process, and the ratio of medians is reported (target: >= 0.95).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, median, save

N = 5
STUDY = ROOT / "studies" / "quickstart.yaml"
KNOBS = {"max_batch_size": 64, "max_num_tokens": 512, "kv_cache_fraction": 0.9}
WORKLOAD = {"workload.num_requests": 64, "workload.output_len": 64}


def main() -> None:
    py = str(ROOT / ".venv" / "bin" / "python")
    harness, direct = [], []
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study.yaml"
        import yaml

        data = yaml.safe_load(STUDY.read_text())
        data["model"]["path"] = str((STUDY.parent / data["model"]["path"]).resolve())
        data["workload"].update({k.split(".")[1]: v for k, v in WORKLOAD.items()})
        study.write_text(yaml.safe_dump(data))
        for i in range(N):
            out = Path(tmp) / f"t{i}"
            sets = [a for k, v in {**KNOBS, "quantization": "none"}.items() for a in ("--set", f"{k}={v}")]
            subprocess.run(
                [py, "-m", "workbench.cli", "trial", str(study), *sets, "--out", str(out)],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            res = json.loads((out / "result.json").read_text())
            harness.append(res["metrics"]["output_tok_s"])
            p = subprocess.run(
                [
                    py,
                    str(ROOT / "benchmarks" / "direct_cb.py"),
                    str(study),
                    str(KNOBS["max_batch_size"]),
                    str(KNOBS["max_num_tokens"]),
                    str(KNOBS["kv_cache_fraction"]),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            direct.append(json.loads(p.stdout.strip().splitlines()[-1])["output_tok_s"])
            print(
                f"run {i}: workbench trial {harness[-1]:.0f} tok/s, direct generate_batch {direct[-1]:.0f} tok/s"
            )
    ratio = median(harness) / median(direct)
    pairwise = [h / d for h, d in zip(harness, direct, strict=True)]
    print(
        f"median: workbench {median(harness):.0f} tok/s, direct {median(direct):.0f} tok/s, ratio {ratio:.3f}; "
        f"median of pairwise ratios {median(pairwise):.3f}"
    )
    print(
        save(
            "harness_overhead",
            {
                "knobs": KNOBS,
                "workload": WORKLOAD,
                "harness_tok_s": harness,
                "direct_tok_s": direct,
                "ratio_of_medians": ratio,
                "median_pairwise_ratio": median(pairwise),
            },
        )
    )


if __name__ == "__main__":
    sys.exit(main())
