"""The build process itself (`python -m workbench.engines.trtllm.build_child REQ OUT`): one build, then exit.

Started by build_process.run_child; it reads the request, runs the ModelOpt or TensorRT build, and
writes the answer with its own memory peak (RSS high-water mark; torch's CUDA peak where CUDA is used).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path
from typing import Any


def _child_peak() -> dict[str, Any]:
    out: dict[str, Any] = {"rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        out["torch_cuda_max_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
    return out


def main(req_path: str, res_path: str) -> None:
    req = json.loads(Path(req_path).read_text())
    out_dir = Path(req.pop("out_dir"))
    kind = req.pop("kind")
    if kind == "modelopt":
        from workbench.engines.trtllm.modelopt_build import quantize_checkpoint

        res = quantize_checkpoint(req, out_dir / "checkpoint")
    elif kind == "builder":  # an engine's own build function, named by the engine ("module:function")
        module, _, fn = req.pop("builder").partition(":")
        res = getattr(importlib.import_module(module), fn)(req, out_dir)
    else:
        raise SystemExit(f"unknown build kind {kind!r}")
    res["child_peak"] = _child_peak()
    Path(res_path).write_text(json.dumps(res, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
