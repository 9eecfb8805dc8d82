"""Validating a study: the typed models first, then the knobs and engine options against the engine the
study names (its declared knobs and options model, through the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workbench.spec.errors import SpecError, at, describe, value_message
from workbench.spec.models import Choices, Range, StudySpec
from workbench.spec.registry import engine_class, engine_names


def validate_spec(
    data: dict[str, Any], source: str = "<study>", source_path: Path | None = None, yaml_root: Any = None
) -> StudySpec:
    """Validate a study given as a dict (what notebooks build in code)."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(source, [describe(err, yaml_root, data, StudySpec) for err in e.errors()]) from None
    spec.source_path = source_path
    tok = spec.model.tokenizer
    if tok and source_path is not None and tok.startswith(("./", "../")):  # a local folder beside the study
        spec.model.tokenizer = str((source_path.parent / tok).resolve())
    problems = _check_against_engine(spec, yaml_root)
    if problems:
        raise SpecError(source, problems)
    return spec


def _check_against_engine(spec: StudySpec, root: Any) -> list[str]:
    """Knob names and values must be ones the engine declares."""
    if spec.engine not in engine_names():
        return [at(root, ("engine",), f"got {spec.engine!r}; allowed engines: {', '.join(engine_names())}")]
    cls = engine_class(spec.engine)
    problems = _check_engine_options(spec, cls, root)
    for section in ("search_space", "baseline"):
        for name, entry in getattr(spec, section).items():
            loc: tuple[Any, ...] = (section, name)
            if name not in cls.knobs:
                what = f"unknown knob for engine {spec.engine!r}; allowed knobs: {', '.join(cls.knobs)}"
                problems.append(at(root, loc, what))
            else:
                problems += [
                    at(root, where, msg) for where, msg in _knob_problems(cls.knobs[name], entry, loc)
                ]
    return problems


def _knob_problems(d: Any, entry: Any, loc: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) for each value of one search-space or baseline entry the knob rejects."""
    if isinstance(entry, Range) and d.type not in ("int", "float"):
        return [(loc, f"{d.name} is {d.type}: give {{choices: [...]}}, not a range")]
    if isinstance(entry, Choices):
        values = [((*loc, "choices", i), c) for i, c in enumerate(entry.choices)]
    elif isinstance(entry, Range):
        values = [((*loc, bound), getattr(entry, bound)) for bound in ("low", "high")]
    else:
        values = [(loc, entry)]
    out = []
    for where, value in values:
        try:
            d.check(value)
        except ValueError as e:
            out.append((where, str(e)))
    return out


def _check_engine_options(spec: StudySpec, cls: Any, root: Any) -> list[str]:
    model = cls.options_model
    if model is None:
        if spec.engine_options:
            return [at(root, ("engine_options",), f"engine {spec.engine!r} takes no engine_options")]
        return []
    try:
        model.model_validate(spec.engine_options)
    except ValidationError as e:
        allowed = f"unknown key; allowed keys: {', '.join(model.model_fields)}"
        return [
            at(
                root,
                ("engine_options", *err["loc"]),
                allowed if err["type"] == "extra_forbidden" else value_message(err),
            )
            for err in e.errors()
        ]
    study_dir = str(spec.source_path.parent) if spec.source_path else None
    return [
        at(root, ("engine_options", *loc), msg)
        for loc, msg in cls.check_options(spec.engine_options, study_dir)
    ]
