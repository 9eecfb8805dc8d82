"""Engine registry: engines are found by name, like lm-eval's models.

Built-in engines map a name to "module:Class"; installed packages add engines through the entry-point
group ``workbench.engines`` (``my_engine = "my_pkg.engine:MyEngine"`` in their pyproject), which the
trial worker sees too because it looks them up the same way in its own environment. A module is
imported only when its engine is asked for, and engine modules import their heavy dependencies
inside methods, so the orchestrating process can read knob declarations cheaply.

Adding an engine: one package under ``workbench/engines/`` plus one line in ``BUILTIN``, or an
installed plugin with the entry point. It must pass ``tests/engines/conformance.py``.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from workbench.types import InputError

if TYPE_CHECKING:
    from workbench.engines.base import Engine, EngineDeclarations

ENTRY_POINT_GROUP = "workbench.engines"

BUILTIN: dict[str, str] = {
    "hf": "workbench.engines.hf:HFEngine",
    "trtllm": "workbench.engines.trtllm:TrtllmEngine",
    "trtllm-tensorrt": "workbench.engines.trtllm_tensorrt:TrtllmTensorrtEngine",
    "replay": "workbench.engines.replay:ReplayEngine",
    "transformers-serve": "workbench.engines.hf.transformers_serve:TransformersServeEngine",
    "trtllm-serve": "workbench.engines.trtllm.server:TrtllmServeEngine",
    "vllm": "workbench.engines.vllm:VllmServeEngine",
    "vllm-inprocess": "workbench.engines.vllm:VllmInProcessEngine",
    "sglang": "workbench.engines.sglang:SglangEngine",
    "openai": "workbench.engines.openai:OpenAIEngine",
}


class UnknownEngine(InputError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@cache
def _plugins() -> dict[str, str]:
    """Engines of installed packages (entry-point group `workbench.engines`); built-ins win a clash."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}


def registry() -> dict[str, str]:
    return {**_plugins(), **BUILTIN}


def engine_names() -> list[str]:
    return sorted(registry())


def get_engine_class(name: str) -> type[EngineDeclarations]:
    """The declarations a study's `engine:` names (an `Engine`, or declarations answered by another
    executor: `replay`)."""
    from workbench.engines.base import EngineDeclarations

    target = registry().get(name)
    if target is None:
        raise UnknownEngine(f"unknown engine {name!r}; registered engines: {', '.join(engine_names())}")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, EngineDeclarations)):
        raise TypeError(f"engine {name!r} ({target}) is not a subclass of workbench.engines.base.Engine")
    return cls


def worker_engine_class(name: str) -> type[Engine]:
    """The engine a trial worker binds to its trial; an error for a name whose trials no worker runs."""
    from workbench.engines.base import Engine, EngineError

    cls = get_engine_class(name)
    if not issubclass(cls, Engine):
        raise EngineError(
            f"engine {name!r} builds and runs nothing: its {cls.executor} executor answers trials"
        )
    return cls
