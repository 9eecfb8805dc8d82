"""Engine registry: engines are found by name, like lm-eval's models.

An entry maps a name to "module:Class". The module is imported only when the engine is asked for,
and engine modules import their heavy dependencies (torch, transformers, tensorrt_llm) inside
methods, so the orchestrating process can read knob declarations cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.engines.base import Engine

_REGISTRY: dict[str, str] = {
    "hf": "workbench.engines.hf:HFEngine",
    "trtllm": "workbench.engines.trtllm:TrtllmEngine",
    "replay": "workbench.engines.replay:ReplayEngine",
}


def register_engine(name: str, target: str) -> None:
    """Register an engine under `name`; `target` is "package.module:ClassName"."""
    _REGISTRY[name] = target


def engine_names() -> list[str]:
    return sorted(_REGISTRY)


def get_engine_class(name: str) -> type[Engine]:
    if name not in _REGISTRY:
        raise KeyError(f"unknown engine {name!r}; registered engines: {', '.join(engine_names())}")
    module_name, _, cls_name = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)
