"""transformers, one vendor package with two ways to run and one knob vocabulary.

`hf`: continuous batching in the worker's own process: engine.py (declarations, feasibility, build),
runner.py (the opened engine). `transformers-serve`: transformers' own server with the same knobs,
started by our launcher (transformers_serve.py the engine, launcher.py the server process). Both
translate through config.py (knobs -> ContinuousBatchingConfig) and quantize.py (torchao);
export.py writes the deployable settings.
"""

from workbench.engines.hf.config import cpu_num_blocks
from workbench.engines.hf.engine import HFEngine
from workbench.engines.hf.quantize import QUANTIZATIONS, torchao_config
from workbench.engines.hf.runner import HFRunner, kv_bytes_per_token

__all__ = ["QUANTIZATIONS", "HFEngine", "HFRunner", "cpu_num_blocks", "kv_bytes_per_token", "torchao_config"]
