"""The `hf` engine: transformers continuous batching in the worker's own process.

engine.py (declarations, feasibility, build), runner.py (the opened engine), config.py (knobs ->
ContinuousBatchingConfig), quantize.py (torchao), export.py (deployable settings).
"""

from workbench.engines.hf.config import cpu_num_blocks
from workbench.engines.hf.engine import HFEngine
from workbench.engines.hf.quantize import QUANTIZATIONS, torchao_config
from workbench.engines.hf.runner import HFRunner, kv_bytes_per_token

__all__ = ["QUANTIZATIONS", "HFEngine", "HFRunner", "cpu_num_blocks", "kv_bytes_per_token", "torchao_config"]
