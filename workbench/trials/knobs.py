"""The one definition of a trial's knob values, so the baseline the grid records is the baseline that runs.

Precedence, lowest first: the engine's defaults < the fixed knobs of the search space < the study's
`baseline:` < the trial's own values. Every value is checked against the engine's knob declaration.
"""

from __future__ import annotations

from typing import Any

from workbench.spec import StudySpec


def resolve_knobs(spec: StudySpec, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Engine defaults < fixed knobs of the search space < the study's baseline < the trial's values."""
    from workbench.engines import get_engine_class

    defs = spec.engine_knobs()
    knobs = {
        **get_engine_class(spec.engine).default_knobs(),
        **spec.fixed_knobs(),
        **spec.baseline,
        **(values or {}),
    }
    return {k: defs[k].check(v) for k, v in knobs.items()}


def baseline_knobs(spec: StudySpec) -> dict[str, Any]:
    """The knob values of the study's baseline trial (fixed knobs included)."""
    return resolve_knobs(spec, {})
