"""The base of every study-file model: unknown keys are errors (a misspelt key must not pass silently)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SCALAR = (bool, int, float, str)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
