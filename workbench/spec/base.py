"""The base of every study-file model: unknown keys are errors (a misspelt key must not pass silently),
a YAML boolean is not a number (`Int`, `Float`), and NaN or infinity is no bound."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

SCALAR = (bool, int, float, str)

#: YAML 1.1 reads these (in any case) as booleans
BOOL_WORDS = "yes/no, on/off, true/false"


def _no_bool(v: Any) -> Any:
    """pydantic turns True into 1; in a study file `num_requests: yes` is a mistake, not 1."""
    if isinstance(v, bool):
        raise ValueError(f"a number is expected, not a boolean (YAML reads {BOOL_WORDS} as booleans)")
    return v


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
