"""Validating a study: the typed models first, then the knobs and engine options against the engine the
study names (its declared knobs and options model, through the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workbench.format import short_repr
from workbench.spec.errors import MAX_SHOWN, SpecError, at, describe, value_message
from workbench.spec.models import Choices, Range, StudySpec
from workbench.spec.registry import engine_class, engine_names


def validate_spec(
    data: dict[str, Any],
    source: str = "<study>",
    source_path: Path | None = None,
    yaml_root: Any = None,
    *,
    check_paths: bool = False,
) -> StudySpec:
    """Validate a study given as a dict (what notebooks build in code). `check_paths`: its local paths
    must exist here too (reading a file to run it); off for a definition read back for inspection,
    which may come from another machine (`require_local_paths` checks before running one)."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as e:  # locating is linear in the file: locate only what is shown
        errors = e.errors()
        shown = [describe(err, yaml_root, data, StudySpec) for err in errors[:MAX_SHOWN]]
        raise SpecError(source, shown, total=len(errors)) from None
    spec.source_path = source_path
    tok = spec.model.tokenizer
    if tok and source_path is not None and tok.startswith(("./", "../")):  # a local folder beside the study
        spec.model.tokenizer = str((source_path.parent / tok).resolve())
    problems = _check_against_engine(spec, yaml_root)
    problems += (local_path_problems(spec, yaml_root) if check_paths else []) + _check_sampler(
        spec, yaml_root
    )
    problems += _check_pruner(spec, yaml_root)
    if problems:
        shown = [p for p in problems if p]
        raise SpecError(source, shown, total=len(problems))
    return spec


def _check_against_engine(spec: StudySpec, root: Any) -> list[str]:
    """Knob names and values must be ones the engine declares."""
    if spec.engine not in engine_names():
        return [at(root, ("engine",), f"got {spec.engine!r}; allowed engines: {', '.join(engine_names())}")]
    cls = engine_class(spec.engine)
    problems = _check_engine_options(spec, cls, root)
    found: list[tuple[tuple[Any, ...], str]] = []
    for section in ("search_space", "baseline"):
        for name, entry in getattr(spec, section).items():
            loc: tuple[Any, ...] = (section, name)
            if name not in cls.knobs:
                found.append(
                    (loc, f"unknown knob for engine {spec.engine!r}; allowed knobs: {', '.join(cls.knobs)}")
                )
            else:
                found += _knob_problems(cls.knobs[name], entry, loc)
    # locating is linear in the file: locate only what the message shows, count the rest
    return (
        problems + [at(root, where, msg) for where, msg in found[:MAX_SHOWN]] + [""] * len(found[MAX_SHOWN:])
    )


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
    if not model.model_fields:
        if spec.engine_options:
            return [at(root, ("engine_options",), f"engine {spec.engine!r} takes no engine_options")]
        return []
    try:
        options = cls.parse_options(spec.engine_options)
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
    return [at(root, ("engine_options", *loc), msg) for loc, msg in cls.check_options(options, study_dir)]


#: the samplers whose options a study may set: name -> class in optuna.samplers (seed is its own key)
SAMPLER_CLASSES = {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "gp": "GPSampler"}


def _check_sampler(spec: StudySpec, root: Any) -> list[str]:
    """`sampler.options` against the sampler's own signature (a wrong key would be a TypeError in `tune`,
    a wrong type a failure in the middle of the study)."""
    s = spec.sampler
    if not s.options:
        return []
    if s.name not in SAMPLER_CLASSES:
        return [at(root, ("sampler", "options"), f"sampler {s.name!r} takes no options")]
    import optuna

    cls = getattr(optuna.samplers, SAMPLER_CLASSES[s.name])
    found = signature_problems(
        cls, f"optuna.samplers.{cls.__name__}", s.options, {"seed": "give the seed as sampler.seed"}
    )
    return [at(root, ("sampler", "options", key), what) for key, what in found]


#: the study's `pruner.name` -> the class in optuna.pruners (`none` is Optuna's NopPruner)
PRUNER_CLASSES = {
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "wilcoxon": "WilcoxonPruner",
    "threshold": "ThresholdPruner",
}


def _check_pruner(spec: StudySpec, root: Any) -> list[str]:
    """`pruner.options` against the Optuna pruner's own signature, like `sampler.options`."""
    p = spec.pruner
    if not p.options:
        return []
    if p.name == "none":
        return [at(root, ("pruner", "options"), "pruner 'none' takes no options")]
    import optuna

    cls = getattr(optuna.pruners, PRUNER_CLASSES[p.name])
    found = signature_problems(cls, f"optuna.pruners.{cls.__name__}", p.options, {})
    return [at(root, ("pruner", "options", key), what) for key, what in found]


def signature_problems(
    cls: Any, qualname: str, options: dict[str, Any], reserved: dict[str, str]
) -> list[tuple[str, str]]:
    """(key, message) for each option `cls(**options)` would reject, read from its signature: an unknown
    key, one that takes a Python object, a value of the wrong type; `reserved` keys are set elsewhere."""
    import inspect

    params = inspect.signature(cls).parameters
    types = {p: _type_names(params[p].annotation) for p in params if p not in reserved}
    settable = [p for p, t in types.items() if set(t) <= set(_OPTION_TYPES)]
    problems = []
    for key, value in options.items():
        if key in reserved:
            what = reserved[key]
        elif key not in params:
            what = f"unknown option of {qualname}; allowed: {', '.join(settable)}"
        elif key not in settable:
            what = f"{key} takes a Python object ({params[key].annotation}): it cannot be set in a study file"
        elif not any(_OPTION_TYPES[t](value) for t in types[key]):
            what = f"got {short_repr(value)}; {key} must be {' or '.join(types[key])}"
        else:
            continue
        problems.append((key, what))
    return problems


def _type_names(annotation: Any) -> list[str]:
    """`int | None` (a string under postponed annotations, or a class) as ["int", "None"]."""
    if isinstance(annotation, type):
        return [annotation.__name__]
    return str(annotation).replace(" ", "").split("|")


#: the option types a study file can give, by the name in the sampler's or pruner's signature
_OPTION_TYPES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
}


def require_local_paths(spec: StudySpec, source: str | None = None) -> None:
    """A `SpecError` unless every local path of `spec` exists on this machine (before running trials)."""
    problems = local_path_problems(spec, None)
    if problems:
        where = source or (str(spec.source_path) if spec.source_path else f"study {spec.name!r}")
        raise SpecError(where, problems)


def local_path_problems(spec: StudySpec, root: Any) -> list[str]:
    """Local paths must exist here: a missing model folder would otherwise fail in the trial's worker
    with a misleading hub error ("Repo id must be in the form ...")."""
    wanted: list[tuple[tuple[Any, ...], str | None, str]] = [
        (("model", "path"), spec.model.path, "folder"),
        (
            ("workload", "dataset", "path"),
            spec.workload.dataset.path if spec.workload.dataset else None,
            "file",
        ),
        (("accuracy", "data_path"), spec.accuracy.data_path if spec.accuracy else None, "folder"),
    ]
    tok = spec.model.tokenizer
    if tok and tok.startswith(("/", "./", "../", "~")):  # a hub id otherwise
        wanted.append((("model", "tokenizer"), tok, "folder"))
    problems = []
    for loc, given, kind in wanted:
        if given is None:
            continue
        p = spec.resolve_path(given)
        ok = p.is_dir() if kind == "folder" else p.is_file()
        if not ok:
            what = "no such" if not p.exists() else "not a"
            relative = (
                "" if Path(given).expanduser().is_absolute() else " (relative to the study file's folder)"
            )
            problems.append(at(root, loc, f"{what} {kind}: {p}{relative}"))
    return problems
