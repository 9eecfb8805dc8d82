"""The search space and the samplers that walk it, through Optuna's public API only.

A searched knob becomes one Optuna distribution; a trial's values come from `Trial.suggest_*`, and
whether a value (the engine's default, for the baseline) lies in the space is decided here from the
distribution's public fields, so the baseline records as params exactly what the space can hold.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from workbench.spec import Choices, Range, StudySpec
from workbench.study.errors import StudyMismatch

#: the sampler names a study file may give (spec.sampler.name)
SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    """Optuna distributions of the searched knobs (fixed knobs are not searched)."""
    defs = spec.engine_knobs()
    out: dict[str, BaseDistribution] = {}
    for name, entry in spec.search_space.items():
        if isinstance(entry, Choices):
            out[name] = CategoricalDistribution(entry.choices)
        elif isinstance(entry, Range):
            if defs[name].type == "int":
                out[name] = IntDistribution(
                    int(entry.low), int(entry.high), log=entry.log, step=int(entry.step or 1)
                )
            else:
                out[name] = FloatDistribution(entry.low, entry.high, log=entry.log, step=entry.step)
    return out


def grid(spec: StudySpec) -> dict[str, list[Any]]:
    """The grid sampler's values: choices as they are, ranges by their step."""
    out = {}
    for name, d in distributions(spec).items():
        if isinstance(d, CategoricalDistribution):
            out[name] = list(d.choices)
        elif d.step is None:
            raise StudyMismatch(
                f"sampler grid needs search_space.{name} to be choices or a range with a step"
            )
        else:
            n = int(round((d.high - d.low) / d.step))
            out[name] = [d.low + i * d.step for i in range(n + 1)]
    return out


def suggest_one(trial: optuna.Trial, name: str, d: BaseDistribution) -> Any:
    """`trial.suggest_*` for one distribution (an enqueued value comes back as it was enqueued)."""
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    if isinstance(d, FloatDistribution):
        return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    raise TypeError(f"search_space.{name}: no suggestion for {type(d).__name__}")


def suggest(trial: optuna.Trial, dists: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: suggest_one(trial, name, d) for name, d in dists.items()}


def contains(d: BaseDistribution, v: Any) -> bool:
    """Whether value `v` lies in distribution `d` (one of its choices, or on its range and step)."""
    try:
        x = d.to_internal_repr(v)  # a choice's index; a number as a float; ValueError when it is neither
    except (ValueError, TypeError):
        return False
    if isinstance(d, CategoricalDistribution):
        return True
    if not isinstance(d, (IntDistribution, FloatDistribution)) or not d.low <= x <= d.high:
        return False
    if isinstance(d, IntDistribution):
        return (x - d.low) % d.step == 0
    if d.step is None:
        return True
    k = (x - d.low) / d.step
    return math.isclose(k, round(k), rel_tol=0, abs_tol=1e-8)


def make_sampler(spec: StudySpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Constraints reach the samplers that use them (TPE, NSGA-II, GP) through `Trial.set_constraint`.

    `seed` replaces the study's own (a resumed study moves it on: `workbench.study.storage`).
    """
    import warnings

    s = spec.sampler.model_copy(update={"seed": seed}) if seed is not None else spec.sampler
    with warnings.catch_warnings():  # the GP sampler is experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if s.name == "tpe":
            return optuna.samplers.TPESampler(seed=s.seed, **s.options)
        if s.name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=s.seed, **s.options)
        if s.name == "gp":  # imports torch in this process: the GP model needs it
            return optuna.samplers.GPSampler(seed=s.seed, **s.options)
        if s.name == "random":
            return optuna.samplers.RandomSampler(seed=s.seed)
        return optuna.samplers.GridSampler(grid(spec), seed=s.seed)


def space_size(dists: dict[str, BaseDistribution]) -> int | None:
    """How many distinct configurations the space holds (None when a range is continuous)."""
    n = 1
    for d in dists.values():
        if isinstance(d, CategoricalDistribution):
            n *= len(d.choices)
        elif isinstance(d, IntDistribution):
            n *= (d.high - d.low) // d.step + 1
        elif isinstance(d, FloatDistribution) and d.step is not None:
            n *= int(round((d.high - d.low) / d.step)) + 1
        else:
            return None
    return n
