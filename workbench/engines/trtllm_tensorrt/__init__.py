"""The `trtllm-tensorrt` engine: TensorRT-LLM 1.2.x's legacy TensorRT-engine backend, its own engine.

Removed from TensorRT-LLM in 1.3, so it is kept apart from `trtllm` (the PyTorch backend): no backend
switch, no check for "a knob of the other backend". knobs.py (its build-time knobs over the shared
ones), args.py (the translation into BuildConfig / QuantConfig / runtime arguments and trtllm-bench
flags), feasibility.py, build.py (the build key's material and the build request), engine.py (build
in a child process, open), runner.py (the saved engine on trtllm's request loop), export.py and
crosscheck.py. It reuses trtllm's API snapshots, calibration data handling and build process.
"""

from workbench.engines.trtllm_tensorrt.engine import TrtllmTensorrtEngine
from workbench.engines.trtllm_tensorrt.runner import TensorrtRunner, resolved_config

__all__ = ["TensorrtRunner", "TrtllmTensorrtEngine", "resolved_config"]
