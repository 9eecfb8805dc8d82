"""The `trtllm` engine: NVIDIA TensorRT-LLM, run in TensorRT-LLM's own environment."""

from workbench.engines.trtllm.engine import (  # noqa: F401
    INSTALL_HINT,
    TrtllmEngine,
    TrtllmNotInstalled,
    TrtllmRunner,
    available,
    kv_stats,
    load_api,
    resolved_config,
)
