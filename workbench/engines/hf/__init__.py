"""The `hf` engine: transformers continuous batching in the worker's own process."""

from workbench.engines.hf.engine import (  # noqa: F401
    QUANTIZATIONS,
    HFEngine,
    HFRunner,
    cpu_num_blocks,
    kv_bytes_per_token,
    torchao_config,
)
