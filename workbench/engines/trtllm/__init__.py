"""The `trtllm` engine: NVIDIA TensorRT-LLM's PyTorch backend, run in TensorRT-LLM's own environment.

knobs.py (declarations, and the knobs both TensorRT-LLM engines share), args.py (the one translation
into TorchLlmArgs, the trtllm-serve `--config` YAML and trtllm-bench flags), feasibility.py (checks
and the memory estimate), build.py with modelopt_build.py and build_process.py (the ModelOpt build
step in a child process), engine.py (build, open: the only tensorrt_llm import), runner.py (the
request loop), export.py (deployable files), crosscheck.py (trtllm-bench beside our numbers), api/
(the recorded 1.2.1 API snapshots). The legacy TensorRT-engine backend is trtllm_tensorrt/.
"""

from workbench.engines.trtllm.engine import (
    INSTALL_HINT,
    TrtllmEngine,
    TrtllmNotInstalled,
    available,
    load_api,
)
from workbench.engines.trtllm.runner import TorchRunner, kv_stats

__all__ = [
    "INSTALL_HINT",
    "TorchRunner",
    "TrtllmEngine",
    "TrtllmNotInstalled",
    "available",
    "kv_stats",
    "load_api",
]
