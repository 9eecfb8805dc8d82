"""vLLM, one vendor package with two ways to run and one knob vocabulary.

knobs.py (the knobs and `engine_options`), args.py (the one translation: knobs -> engine arguments,
rendered as `vllm serve` flags or passed to `AsyncEngineArgs`), feasibility.py, build.py (the ModelOpt
build step), resolved.py (what vLLM chose, read back), server.py (`vllm`: the server people deploy),
engine.py and runner.py (`vllm-inprocess`: `AsyncLLM` in the worker), api/ (vLLM 0.26.0's recorded
arguments, parser, metrics and classes, and strict stand-ins built from them for the tests).
"""

from workbench.engines.vllm.engine import VllmInProcessEngine
from workbench.engines.vllm.knobs import VllmOptions
from workbench.engines.vllm.server import VllmServeEngine

__all__ = ["VllmInProcessEngine", "VllmOptions", "VllmServeEngine"]
