"""Server engines: each trial starts an OpenAI-compatible server with its knobs and measures it with a
streaming client (base.py the contract, process.py the server process, client.py and runner.py the
load generator's client, scrape.py server metrics, hf_server.py our transformers launcher,
transformers_serve.py, vendors.py (SGLang; vLLM and trtllm-serve are in their vendor packages, engines/vllm/
and engines/trtllm/) and openai.py the engines, recorded.py
the vendors' documented options, aiperf.py the optional cross-check).
"""

from workbench.engines.serve.base import ServeOptions, ServerEngine
from workbench.engines.serve.openai import OpenAIEngine
from workbench.engines.serve.transformers_serve import TransformersServeEngine
from workbench.engines.serve.vendors import SglangEngine

__all__ = [
    "OpenAIEngine",
    "ServeOptions",
    "ServerEngine",
    "SglangEngine",
    "TransformersServeEngine",
]
