"""The `trtllm` engine: NVIDIA TensorRT-LLM, run in TensorRT-LLM's own environment.

knobs.py (declarations), args.py (pure translation into LLM-API arguments and trtllm-bench flags),
feasibility.py (checks and the memory estimate), engine.py (build, open: the only tensorrt_llm
import), export.py (deployable files), crosscheck.py (trtllm-bench beside our numbers), api/ (the
recorded 1.2.x API snapshot).
"""

from workbench.engines.trtllm.engine import (
    INSTALL_HINT,
    TrtllmEngine,
    TrtllmNotInstalled,
    available,
    load_api,
)
from workbench.engines.trtllm.runner import TrtllmRunner, kv_stats, resolved_config

__all__ = [
    "INSTALL_HINT",
    "TrtllmEngine",
    "TrtllmNotInstalled",
    "TrtllmRunner",
    "available",
    "kv_stats",
    "load_api",
    "resolved_config",
]
