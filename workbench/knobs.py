"""Knob declarations: what an engine can be tuned on, and whether a change means a rebuild.

Engines declare their knobs as data, so a study definition can be validated (names, types, allowed
values) in the light orchestrating process without importing the engine's heavy dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
        """Return the value coerced to the knob's type, or raise ValueError saying what is allowed.

        A knob whose default is None ("auto") also takes None: leave the setting to the engine.
        """
        if value is None and self.default is None:
            return None
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(f"{value!r} is not allowed for {self.name}: must be {self.allowed()}")
        if self.type == "categorical":
            if value in (self.choices or ()):
                return value
            raise ValueError(f"{value!r} is not allowed for {self.name}: must be {self.allowed()}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not allowed for {self.name}: must be {self.allowed()}")
        if self.type == "int":
            if float(value) != int(value):
                raise ValueError(f"{value!r} is not allowed for {self.name}: must be {self.allowed()}")
            value = int(value)
        else:
            value = float(value)
        too_low = self.low is not None and (value <= self.low if self.low_exclusive else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            raise ValueError(f"{value!r} is not allowed for {self.name}: must be {self.allowed()}")
        return value


def split_knobs(defs: dict[str, KnobDef], values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split knob values into (build-time, runtime) by the engine's declarations."""
    build = {k: v for k, v in values.items() if defs[k].build_time}
    runtime = {k: v for k, v in values.items() if not defs[k].build_time}
    return build, runtime
