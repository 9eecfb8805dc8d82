"""Memory estimates from a model's config.json, before anything is loaded: pure arithmetic.

Used to prune configurations that cannot fit and to log what a trial should need. Every figure
here is an estimate (dense decoder-only transformers; MoE expert counts are honoured) and is
labelled as one wherever it is shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GiB = 1024**3

#: bytes per weight for the linear layers under each weight format (scales of group-wise formats included)
WEIGHT_BYTES = {
    "bf16": 2.0,
    "fp32": 4.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + 2 / 128,  # group size 128, one 16-bit scale per group
    "fp4": 0.5 + 1 / 16,  # NVFP4: one FP8 scale per 16 values
}


def read_config(source: str) -> dict[str, Any]:
    """The model's config.json from a local folder or the local hub cache (never the network); {} if unknown."""
    p = Path(source) / "config.json"
    if p.is_file():
        return json.loads(p.read_text())
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")
        if isinstance(cached, str):
            return json.loads(Path(cached).read_text())
    except Exception:  # noqa: BLE001 - an estimate is optional
        pass
    return {}


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg.get("text_config") or cfg


def head_dim(cfg: dict[str, Any]) -> int:
    c = _text_config(cfg)
    return int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])


def kv_bytes_per_token(cfg: dict[str, Any], dtype_bytes: float) -> int:
    """K and V for every layer: 2 x layers x kv_heads x head_dim x bytes."""
    c = _text_config(cfg)
    kv_heads = c.get("num_key_value_heads") or c["num_attention_heads"]
    return int(2 * c["num_hidden_layers"] * kv_heads * head_dim(cfg) * dtype_bytes)


def param_counts(cfg: dict[str, Any]) -> dict[str, int]:
    """Parameters split into the linear layers (what quantization shrinks) and the rest (embeddings, norms)."""
    c = _text_config(cfg)
    h, layers, vocab = int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c["vocab_size"])
    heads = int(c["num_attention_heads"])
    kv_heads = int(c.get("num_key_value_heads") or heads)
    hd = head_dim(cfg)
    inter = int(c.get("intermediate_size") or 4 * h)
    experts = int(c.get("num_local_experts") or c.get("num_experts") or 1)
    attn = h * heads * hd + 2 * h * kv_heads * hd + heads * hd * h
    mlp = 3 * h * inter * experts + (h * experts if experts > 1 else 0)
    linear = layers * (attn + mlp)
    embed = vocab * h
    lm_head = 0 if c.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False)) else vocab * h
    norms = layers * 2 * h + h
    return {"linear": linear, "embedding": embed, "lm_head": lm_head, "norms": norms}


def weight_bytes(cfg: dict[str, Any], weight_format: str, dtype_bytes: float = 2.0) -> int:
    """Weights at their quantized size; embeddings, lm_head and norms stay in the model dtype."""
    p = param_counts(cfg)
    return int(
        p["linear"] * WEIGHT_BYTES[weight_format] + (p["embedding"] + p["lm_head"] + p["norms"]) * dtype_bytes
    )


def activation_bytes(cfg: dict[str, Any], max_num_tokens: int, dtype_bytes: float = 2.0) -> int:
    """A rough upper bound of one step's activations: a few hidden-size and MLP-size buffers per token, plus logits."""
    c = _text_config(cfg)
    h, inter, vocab = (
        int(c["hidden_size"]),
        int(c.get("intermediate_size") or 4 * c["hidden_size"]),
        int(c["vocab_size"]),
    )
    return int(max_num_tokens * (4 * h + 2 * inter) * dtype_bytes + min(max_num_tokens, 256) * vocab * 4)
