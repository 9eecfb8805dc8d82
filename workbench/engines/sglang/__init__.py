"""SGLang: the `sglang` server engine (declared with its recorded options; it does not run here)."""

from workbench.engines.sglang.engine import SglangEngine

__all__ = ["SglangEngine"]
