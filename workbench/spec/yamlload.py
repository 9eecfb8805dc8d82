"""Reading a study file: YAML into a mapping plus its node tree (for line numbers in error messages),
then the `--set` changes, then validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.spec.errors import SpecError
from workbench.spec.models import StudySpec
from workbench.spec.overrides import apply_changes
from workbench.spec.validate import validate_spec


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate a study file. `overrides` maps dotted keys (workload.num_requests) to values."""
    path = Path(path)
    data, root = read_yaml(path)
    apply_changes(data, overrides or {})
    return validate_spec(data, source=str(path), source_path=path.resolve(), yaml_root=root)


def read_yaml(path: Path) -> tuple[dict[str, Any], Any]:
    """The file's top-level mapping and its YAML node tree; a `SpecError` for anything else."""
    source = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(source, [f"cannot read the file: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(source, [f"{where}not valid YAML ({getattr(e, 'problem', e)})"]) from None
    if not isinstance(data, dict):
        raise SpecError(source, ["the file must hold a mapping (key: value pairs) at the top level"])
    return data, root
