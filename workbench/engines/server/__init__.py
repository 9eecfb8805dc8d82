"""The engine-neutral server transport every server engine uses (the vendor engines live in their packages).

base.py the server-engine contract (`ServerEngine`, `ServeOptions`, the core knobs of a vendor
server), process.py the server process, client.py the one streaming client, runner.py the runner that
drives a server, scrape.py its metrics, aiperf.py the optional AIPerf cross-check, trivial.py the
trivial server (the load generator's ceiling and failure tests). The engines: `transformers-serve`
(engines/hf/), `trtllm-serve` (engines/trtllm/), `vllm` (engines/vllm/), `sglang` (engines/sglang/),
`openai` (engines/openai/).
"""

from workbench.engines.server.base import ServeOptions, ServerEngine

__all__ = ["ServeOptions", "ServerEngine"]
