"""The PyTorch backend's build step: ModelOpt post-training quantization into an exported HF checkpoint.

TensorRT-LLM's PyTorch backend ignores a QuantConfig; it loads a checkpoint whose
`hf_quant_config.json` says how it is quantized. This module makes that checkpoint the way NVIDIA's
own recipe does (`modelopt.torch.quantization.quantize(model, CFG, forward_loop)` with a calibration
loop, then `modelopt.torch.export.export_hf_checkpoint`), written against the API present in both
ModelOpt 0.37 (TensorRT-LLM 1.2.1's pin) and 0.47: the `*_CFG` dicts, `quantize`, and
`export_hf_checkpoint(model, export_dir=...)`. It needs torch, transformers and nvidia-modelopt only,
so it runs wherever the hf engine runs (FP8, INT4 AWQ and SmoothQuant calibrate on the CPU too;
NVFP4's block scales need CUDA).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

#: study quantization name -> the ModelOpt config (an attribute of modelopt.torch.quantization)
ALGORITHMS: dict[str, str] = {
    "fp8": "FP8_DEFAULT_CFG",
    "w4a16_awq": "INT4_AWQ_CFG",
    "w4a8_awq": "W4A8_AWQ_BETA_CFG",
    "nvfp4": "NVFP4_DEFAULT_CFG",
}
#: what hf_quant_config.json's quantization.quant_algo says for each
EXPORTED_ALGO = {
    "fp8": "FP8",
    "w4a16_awq": "W4A16_AWQ",
    "w4a8_awq": "W4A8_AWQ",
    "nvfp4": "NVFP4",
}
NEEDS_CUDA = ("nvfp4",)
DISTRIBUTION = "nvidia-modelopt"


def modelopt_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _kv_entries(kv_cfg: dict[str, Any]) -> Any:
    """The KV-cache quantizer entries of ModelOpt's FP8_KV_CFG (a dict before 0.4x, a list after)."""
    q = kv_cfg["quant_cfg"]
    if isinstance(q, dict):
        return {k: v for k, v in q.items() if "bmm_quantizer" in k}
    return [e for e in q if "bmm_quantizer" in str(e.get("quantizer_name", ""))]


def quant_config(mtq: Any, quantization: str, kv_fp8: bool) -> dict[str, Any]:
    """The ModelOpt config of a study quantization, with FP8 KV-cache scales added when asked."""
    cfg = copy.deepcopy(getattr(mtq, ALGORITHMS[quantization]))
    if kv_fp8:
        kv = _kv_entries(mtq.FP8_KV_CFG)
        if isinstance(cfg["quant_cfg"], dict):
            cfg["quant_cfg"].update(kv)
        else:
            cfg["quant_cfg"] = [*cfg["quant_cfg"], *kv]
    return cfg


def calibration_batches(tokenizer: Any, texts: list[str], max_len: int, batch_size: int) -> list[Any]:
    """Token batches of the calibration texts, each truncated to `max_len` tokens."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[i : i + batch_size], return_tensors="pt", truncation=True, max_length=max_len, padding=True
        )
        out.append(enc)
    return out


def _load(req: dict[str, Any]) -> tuple[Any, Any]:
    """The model to quantize and its tokenizer. `random_weights` (a study's `load_format: dummy`): random
    weights in the shape of the model's config.json, made on the build's device (a shape folder holds no
    weights; 8 B random parameters are made in seconds on a GPU, minutes on a CPU)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src, rev, trust, device = (
        req["model_source"],
        req.get("revision"),
        bool(req.get("trust_remote_code")),
        req["device"],
    )
    torch_dtype = "auto" if req["dtype"] == "auto" else getattr(torch, req["dtype"])
    if req.get("random_weights"):
        cfg = AutoConfig.from_pretrained(src, revision=rev, trust_remote_code=trust)
        dtype = torch.bfloat16 if torch_dtype == "auto" else torch_dtype
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, trust_remote_code=trust)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            src, revision=rev, dtype=torch_dtype, trust_remote_code=trust
        )
        model = model.to(device)
    model.eval()
    tok = AutoTokenizer.from_pretrained(req.get("tokenizer") or src, revision=rev, trust_remote_code=trust)
    return model, tok


def quantize_checkpoint(req: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Load, calibrate, quantize and export; return timings, sizes and the exported quantization.

    `req`: model_source, revision, dtype, device ("cpu"/"cuda"), trust_remote_code, quantization,
    kv_cache_dtype, texts (calibration), calib_max_seq_length, calib_batch_size."""
    import modelopt.torch.quantization as mtq
    import torch
    from modelopt.torch.export import export_hf_checkpoint

    q = req["quantization"]
    if q in NEEDS_CUDA and req["device"] != "cuda":
        raise RuntimeError(f"{q} calibration needs CUDA (ModelOpt computes its block scales on the GPU)")
    t0 = time.perf_counter()
    model, tok = _load(req)
    load_s = time.perf_counter() - t0
    batches = calibration_batches(
        tok, req["texts"], int(req["calib_max_seq_length"]), int(req["calib_batch_size"])
    )

    def forward_loop(m: Any) -> None:
        with torch.no_grad():
            for b in batches:
                m(
                    input_ids=b["input_ids"].to(req["device"]),
                    attention_mask=b["attention_mask"].to(req["device"]),
                )

    cfg = quant_config(mtq, q, req.get("kv_cache_dtype") == "fp8")
    t1 = time.perf_counter()
    mtq.quantize(model, cfg, forward_loop)
    calib_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        # the dtype explicitly: a config's torch_dtype may be a string, which the export cannot use
        export_hf_checkpoint(model, dtype=next(model.parameters()).dtype, export_dir=str(out_dir))
    tok.save_pretrained(str(out_dir))
    export_s = time.perf_counter() - t2
    return {
        "steps_s": {"load": load_s, "calibrate_quantize": calib_s, "export": export_s},
        "calib_samples": len(req["texts"]),
        "calib_tokens": int(sum(int(b["attention_mask"].sum()) for b in batches)),
        "hf_quant_config": read_quant_config(out_dir),
        "modelopt_version": modelopt_version(),
    }


def read_quant_config(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's hf_quant_config.json (what TensorRT-LLM's PyTorch backend reads)."""
    f = Path(checkpoint) / "hf_quant_config.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def main(request_json: str, out_dir: str) -> None:
    """`python -m workbench.engines.trtllm.modelopt_build quantize.json OUT`: an exported trial's build."""
    import workbench.engines.trtllm.calib as calib

    req = json.loads(Path(request_json).read_text())
    c = req.pop("calibration")
    if "unusable" in c:
        raise SystemExit(c["unusable"])
    src = calib.CalibSource(c["kind"], c["location"], c.get("sha256"), c.get("size_bytes"))
    req["texts"] = calib.load_texts(src, int(req.pop("calib_samples")), req.pop("calib_text_field"))
    print(json.dumps(quantize_checkpoint(req, Path(out_dir)), indent=2, default=str))


if __name__ == "__main__":
    import sys

    main(sys.argv[1], sys.argv[2])
