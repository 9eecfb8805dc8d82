"""Knob declarations: what an engine can be tuned on, and whether a change means a rebuild.

Engines declare their knobs as data, so a study definition can be validated (names, types, allowed
values) in the light orchestrating process without importing the engine's heavy dependencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from workbench.format import short_repr

KnobType = Literal["int", "float", "categorical", "bool"]

# The four knobs every engine understands, under the names used in study files and MLflow params.
MAX_BATCH_SIZE = "max_batch_size"
KV_CACHE_FRACTION = "kv_cache_fraction"
MAX_NUM_TOKENS = "max_num_tokens"
QUANTIZATION = "quantization"
CORE_KNOBS = (MAX_BATCH_SIZE, KV_CACHE_FRACTION, MAX_NUM_TOKENS, QUANTIZATION)


@dataclass(frozen=True)
class KnobDef:
    """One tunable setting of an engine."""

    name: str
    type: KnobType
    build_time: bool
    default: Any
    help: str
    low: float | None = None  # inclusive bounds for int/float knobs
    high: float | None = None
    low_exclusive: bool = False
    choices: tuple[Any, ...] | None = None  # allowed values for categorical knobs

    def allowed(self) -> str:
        """Human-readable description of the allowed values, for error messages."""
        if self.default is None and self.type != "categorical":
            return self._allowed() + ", or null (auto: the engine's own default)"
        return self._allowed()

    def _allowed(self) -> str:
        if self.type == "categorical":
            return "one of " + ", ".join(str(c) for c in self.choices or ())
        if self.type == "bool":
            return "true or false"
        lo = "" if self.low is None else (f"> {self.low}" if self.low_exclusive else f">= {self.low}")
        hi = "" if self.high is None else f"<= {self.high}"
        bounds = " and ".join(b for b in (lo, hi) if b)
        return f"{'an integer' if self.type == 'int' else 'a number'}{' ' + bounds if bounds else ''}"

    def check(self, value: Any) -> Any:
        """Return the value coerced to the knob's type, or raise ValueError saying what is allowed (the
        value in the message cut short: it may come from a hostile file). A knob whose default is None
        ("auto") also takes None: leave the setting to the engine."""
        if value is None and self.default is None:
            return None
        typed = self._coerce(value)
        if typed is not None and self.type in ("int", "float"):
            too_low = self.low is not None and (typed <= self.low if self.low_exclusive else typed < self.low)
            if not (too_low or self.high is not None and typed > self.high):
                return typed
            value = typed
        elif typed is not None:
            return typed
        raise ValueError(f"{short_repr(value)} is not allowed for {self.name}: must be {self.allowed()}")

    def _coerce(self, value: Any) -> Any:
        """The value as the knob's type (bounds not checked), else None (no knob allows None)."""
        if self.type == "bool":
            return value if isinstance(value, bool) else None
        if self.type == "categorical":
            return value if value in (self.choices or ()) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if self.type == "int":
            return int(value) if not isinstance(value, float) or value.is_integer() else None
        return float(value) if abs(value) <= 1e300 else None  # an integer too large for a float: None


def split_knobs(defs: dict[str, KnobDef], values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split knob values into (build-time, runtime) by the engine's declarations."""
    build = {k: v for k, v in values.items() if defs[k].build_time}
    runtime = {k: v for k, v in values.items() if not defs[k].build_time}
    return build, runtime
