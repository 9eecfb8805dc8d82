"""torchao quantization of the `hf` engine: the study's quantization names and their torchao configs.

A build quantizes a checkpoint through transformers' `TorchAoConfig`; random weights (load_format
dummy) are quantized in place with the same configs, leaving the lm_head as TorchAoConfig does.
torch and torchao are imported inside the functions only.
"""

from __future__ import annotations

from typing import Any

QUANTIZATIONS = ("none", "int8", "int8_dynamic", "int4", "int4_intx", "float8", "float8_dynamic")


def torchao_config(name: str) -> Any:
    """The torchao config object for a quantization name (imports torchao)."""
    import torch
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        IntxWeightOnlyConfig,
    )
    from torchao.quantization.granularity import PerGroup, PerRow

    return {
        "int8": lambda: Int8WeightOnlyConfig(),
        "int8_dynamic": lambda: Int8DynamicActivationInt8WeightConfig(),
        "int4": lambda: Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"),
        "int4_intx": lambda: IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)),
        "float8": lambda: Float8WeightOnlyConfig(),
        "float8_dynamic": lambda: Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
    }[name]()


def quantize_in_place(model: Any, name: str) -> None:
    """Quantize a loaded model's linear layers as transformers' TorchAoConfig does (lm_head untouched)."""
    import torch
    from torchao.quantization import quantize_

    quantize_(
        model,
        torchao_config(name),
        filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and "lm_head" not in fqn,
    )


def torch_dtype(name: str) -> Any:
    """A study's model.dtype as from_pretrained takes it ("auto" stays a string)."""
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]
