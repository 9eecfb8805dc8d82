"""What both vLLM engines declare alike: knobs, options, packages, feasibility, doctor notes and the build.

A mixin placed before each engine's base class (`Engine` in-process, `ServerEngine` for `vllm serve`), so the
two ways to run cannot drift apart in anything but how they run.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.engines.vllm.build import VllmBuild
from workbench.engines.vllm.feasibility import infeasible_reason
from workbench.engines.vllm.knobs import KNOB_DEFS, VllmOptions
from workbench.knobs import KnobDef


class VllmDeclarations(VllmBuild):
    knobs: ClassVar[dict[str, KnobDef]] = KNOB_DEFS
    options_model: ClassVar[type[BaseModel]] = VllmOptions
    packages: ClassVar[tuple[str, ...]] = ("vllm", "torch", "transformers", "nvidia-modelopt")

    @classmethod
    def doctor_notes(cls) -> list[str]:
        from workbench.engines.vllm.checks import setups_here

        return setups_here()

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return infeasible_reason(knobs, device, context)
