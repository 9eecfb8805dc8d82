"""SGLang's command-line options, as its documentation and source state them (it cannot run here).

Every flag our command line uses must be in the set (tests/test_serve.py checks), so a renamed flag
shows up as a failing test when the set is updated from a new release. trtllm-serve's and vLLM's
options are recorded from their own source with their engines (engines/trtllm/api/, engines/vllm/api/).
Source (read 2026-11-27, also in docs/serving.md):

- SGLang 0.5.23: sglang/srt/server_args.py and docs.sglang.io "Server Arguments";
  `python -m sglang.launch_server --model-path ...`; /metrics needs `--enable-metrics`.
"""

from __future__ import annotations

SGLANG_OPTIONS = frozenset(
    {
        "--model-path",
        "--tokenizer-path",
        "--host",
        "--port",
        "--dtype",
        "--load-format",
        "--trust-remote-code",
        "--revision",
        "--mem-fraction-static",
        "--max-running-requests",
        "--max-total-tokens",
        "--chunked-prefill-size",
        "--max-prefill-tokens",
        "--page-size",
        "--schedule-conservativeness",
        "--kv-cache-dtype",
        "--quantization",
        "--attention-backend",
        "--disable-radix-cache",
        "--disable-cuda-graph",
        "--cuda-graph-max-bs",
        "--enable-metrics",
        "--tp-size",
        "--served-model-name",
        "--context-length",
        "--random-seed",
    }
)

#: the options each server accepts, by engine name
RECORDED = {"sglang": SGLANG_OPTIONS}


def flags(cmd: list[str]) -> list[str]:
    """The option names of a command line (`--x` and the part before `=` of `--x=y`)."""
    return [c.split("=", 1)[0] for c in cmd if c.startswith("--")]
