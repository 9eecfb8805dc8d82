"""The one place the spec layer looks an engine up by name (its knobs, its options model).

The spec sits below the engines (engines read `StudySpec`), but a study file is checked against the
engine it names. This lookup goes through the registry, which imports no spec module, so the upward
import is one edge, here, and no circle.
"""

from __future__ import annotations

from typing import Any


def engine_names() -> list[str]:
    from workbench.engines import engine_names as names

    return list(names())


def engine_class(name: str) -> Any:
    from workbench.engines import get_engine_class

    return get_engine_class(name)
