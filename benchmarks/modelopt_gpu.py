"""ModelOpt build time and checkpoint size per algorithm: the trtllm engine's PyTorch-backend build step.

GPU (the H200, through the device tool): Llama-3.1-8B's shape (config below, vocabulary 128,256) with
random bf16 weights made on the GPU (no weights can be downloaded there: the `load_format: dummy` of
a study), calibrated on `--samples` random-token sequences of `--seq-len` tokens, quantized with the
ModelOpt config the workbench uses (workbench.engines.trtllm.modelopt_build.quant_config) and
exported with export_hf_checkpoint, one algorithm at a time on a fresh model. Timings are real;
the checkpoints are meaningless as models.
`--small`: the project's tiny model on the CPU, calibrated on texts, through the workbench's own
build function (quantize_checkpoint, as a trial runs it). NVFP4 needs CUDA and is skipped there.
Results: one JSON file per algorithm under --out, plus summary.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"],  # ModelOpt's export reads it (None breaks is_multimodal_model)
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
}
GPU_ALGOS = ["fp8", "w4a16_awq", "int8_sq_per_channel", "nvfp4"]
CPU_ALGOS = ["fp8", "fp8+kv_fp8", "w4a16_awq", "int8_sq_per_channel"]


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def split(algo: str) -> tuple[str, bool]:
    q, _, kv = algo.partition("+")
    return q, kv == "kv_fp8"


def run_small(algos: list[str], out: Path, samples: int, seq_len: int) -> list[dict]:
    """The tiny model on the CPU through the workbench's own build function."""
    from workbench.engines.trtllm.modelopt_build import quantize_checkpoint
    from workbench.tiny_model import make_tiny_model

    model = make_tiny_model(out / "tiny")
    texts = [
        f"Calibration text number {i}: the quick brown fox jumps over the lazy dog. " * 8
        for i in range(samples)
    ]
    rows = []
    for algo in algos:
        q, kv = split(algo)
        ckpt = out / f"ckpt-{algo}"
        t0 = time.perf_counter()
        res = quantize_checkpoint(
            {
                "model_source": str(model),
                "dtype": "float32",
                "device": "cpu",
                "quantization": q,
                "kv_cache_dtype": "fp8" if kv else "auto",
                "texts": texts,
                "calib_max_seq_length": seq_len,
                "calib_batch_size": 8,
            },
            ckpt,
        )
        rows.append(
            {
                "algorithm": algo,
                "total_s": time.perf_counter() - t0,
                **res["steps_s"],
                "checkpoint_bytes": dir_size(ckpt),
                "source_fp32_bytes": dir_size(model),
                "quant_algo": res["hf_quant_config"]["quantization"]["quant_algo"],
                "kv_cache_quant_algo": res["hf_quant_config"]["quantization"]["kv_cache_quant_algo"],
                "calib_samples": res["calib_samples"],
                "calib_tokens": res["calib_tokens"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_gpu(
    algos: list[str],
    out: Path,
    samples: int,
    seq_len: int,
    keep: bool,
    device: str = "cuda",
    shape: dict | None = None,
) -> list[dict]:
    """Llama-3.1-8B's shape, random bf16 weights on the GPU, random-token calibration (`device`/`shape`
    only change for a dry run of this code path on the CPU: `--dry-run`)."""
    import shutil

    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import LlamaConfig, LlamaForCausalLM

    from workbench.engines.trtllm.modelopt_build import quant_config

    cfg = LlamaConfig(**(shape or LLAMA_31_8B))
    cuda = device == "cuda"
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg.vocab_size, (samples, seq_len), generator=g)
    rows = []
    for algo in algos:
        q, kv = split(algo)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        torch.set_default_dtype(torch.bfloat16)  # made in bf16 on the GPU: no fp32 copy of 8 B weights
        with torch.device(device):
            model = LlamaForCausalLM(cfg).eval()  # random weights: load_format dummy
        torch.set_default_dtype(torch.float32)
        if cuda:
            torch.cuda.synchronize()
        make_s = time.perf_counter() - t0

        def loop(m, batch: int = 8) -> None:
            with torch.no_grad():
                for i in range(0, samples, batch):
                    m(input_ids=data[i : i + batch].to(device))

        t1 = time.perf_counter()
        mtq.quantize(model, quant_config(mtq, q, kv), loop)
        if cuda:
            torch.cuda.synchronize()
        calib_s = time.perf_counter() - t1
        ckpt = out / f"ckpt-{algo}"
        t2 = time.perf_counter()
        with torch.inference_mode():
            export_hf_checkpoint(model, dtype=torch.bfloat16, export_dir=str(ckpt))
        export_s = time.perf_counter() - t2
        hq = json.loads((ckpt / "hf_quant_config.json").read_text())["quantization"]
        rows.append(
            {
                "algorithm": algo,
                "make_model_s": make_s,
                "calibrate_quantize_s": calib_s,
                "export_s": export_s,
                "checkpoint_bytes": dir_size(ckpt),
                "bf16_bytes": sum(p.numel() * 2 for p in model.parameters()),
                "quant_algo": hq["quant_algo"],
                "kv_cache_quant_algo": hq["kv_cache_quant_algo"],
                "peak_gpu_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
                "calib_samples": samples,
                "calib_seq_len": seq_len,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del model
        if not keep:
            shutil.rmtree(ckpt, ignore_errors=True)
    return rows


def environment() -> dict:
    from importlib import metadata

    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name(0)
    for p in ("nvidia-modelopt", "transformers"):
        out[p] = metadata.version(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the tiny model on the CPU (runs anywhere)")
    ap.add_argument("--algorithms", default=None, help="comma-separated; default: all of the mode's")
    ap.add_argument("--samples", type=int, default=None, help="calibration samples (GPU 256, small 64)")
    ap.add_argument(
        "--seq-len", type=int, default=None, help="calibration tokens per sample (GPU 512, small 128)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the GPU checkpoints (16 GB each)")
    ap.add_argument(
        "--dry-run", action="store_true", help="the GPU code path on the CPU with a 2-layer shape"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "modelopt")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    algos = a.algorithms.split(",") if a.algorithms else (CPU_ALGOS if a.small else GPU_ALGOS)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if a.small:
        rows = run_small(algos, a.out, a.samples or 64, a.seq_len or 128)
    elif a.dry_run:
        shape = {
            **LLAMA_31_8B,
            "vocab_size": 1024,
            "hidden_size": 128,
            "intermediate_size": 384,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
        }
        rows = run_gpu(algos, a.out, a.samples or 16, a.seq_len or 32, a.keep, "cpu", shape)
    else:
        rows = run_gpu(algos, a.out, a.samples or 256, a.seq_len or 512, a.keep)
    summary = {
        "mode": "small-cpu" if a.small else ("dry-run" if a.dry_run else "gpu"),
        "started": started,
        "command": " ".join(sys.argv),
        "environment": environment(),
        "rows": rows,
    }
    for r in rows:
        (a.out / f"{r['algorithm']}.json").write_text(json.dumps(r, indent=2))
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["environment"]))


if __name__ == "__main__":
    main()
