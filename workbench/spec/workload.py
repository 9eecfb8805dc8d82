"""The workload section of a study: how many requests, their lengths, their prompts and their arrival."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from workbench.spec.base import _Strict


class FixedLen(_Strict):
    dist: Literal["fixed"]
    value: int = Field(ge=1)


class UniformLen(_Strict):
    dist: Literal["uniform"]
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> UniformLen:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class NormalLen(_Strict):
    """trtllm-bench's token-norm-dist: a normal distribution, clipped to [min, max]."""

    dist: Literal["normal"]
    mean: float = Field(gt=0)
    std: float = Field(ge=0)
    min: int = Field(1, ge=1)
    max: int | None = None


LengthDist = Annotated[FixedLen | UniformLen | NormalLen, Field(discriminator="dist")]


def _len_shorthand(v: Any) -> Any:
    return {"dist": "fixed", "value": v} if isinstance(v, int) and not isinstance(v, bool) else v


class DatasetSpec(_Strict):
    """Prompts from a JSON Lines file instead of random tokens.

    format "trtllm-bench" reads trtllm-bench's dataset lines (prompt or input_ids, output_tokens);
    format "text" reads one text field (e.g. GSM8K's "question").
    """

    path: str
    format: Literal["trtllm-bench", "text"] = "trtllm-bench"
    field: str = "prompt"
    max_input_len: int | None = Field(None, ge=1, description="left-truncate longer prompts")


class Burst(_Strict):
    """Every request arrives at once: offline maximum throughput (trtllm-bench's default)."""

    mode: Literal["burst"]


class Rate(_Strict):
    """Poisson arrivals at a mean rate in requests per second (seeded, so reproducible)."""

    mode: Literal["rate"]
    rate: float = Field(gt=0)


class Concurrency(_Strict):
    """A fixed number of requests in flight (trtllm-bench --concurrency)."""

    mode: Literal["concurrency"]
    concurrency: int = Field(ge=1)


Arrival = Annotated[Burst | Rate | Concurrency, Field(discriminator="mode")]


class Sweep(_Strict):
    """Several loads in one trial: each point runs `num_requests` requests at one concurrency or rate
    (or, with `requests_per_load`, more at high loads, so a 1...256 sweep keeps every point short)."""

    concurrency: list[int] | None = Field(None, min_length=1)
    rate: list[float] | None = Field(None, min_length=1)
    requests_per_load: float | None = Field(
        None, gt=0, description="a point runs max(num_requests, ceil(this x load)) requests"
    )

    @model_validator(mode="after")
    def _one_axis(self) -> Sweep:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("a sweep gives exactly one of `concurrency` (a list) or `rate` (a list)")
        values = self.concurrency or self.rate or []
        if any(v <= 0 for v in values) or sorted(values) != list(values):
            raise ValueError("sweep loads must be positive and increasing")
        return self

    @property
    def axis(self) -> str:
        return "concurrency" if self.concurrency is not None else "rate"

    @property
    def loads(self) -> list[float]:
        return [float(v) for v in (self.concurrency or self.rate or [])]

    def requests_at(self, load: float, num_requests: int) -> int:
        """Requests of the point at `load`."""
        if self.requests_per_load is None:
            return num_requests
        return max(num_requests, math.ceil(self.requests_per_load * load))


class WorkloadSpec(_Strict):
    num_requests: int = Field(64, ge=1)
    warmup_requests: int = Field(4, ge=0)
    input_len: LengthDist = FixedLen(dist="fixed", value=128)
    output_len: LengthDist = FixedLen(dist="fixed", value=128)
    ignore_eos: bool = Field(
        True, description="generate exactly output_len tokens, as trtllm-bench --eos_id -1"
    )
    dataset: DatasetSpec | None = None
    arrival: Arrival = Burst(mode="burst")
    seed: int = 0
    repeats: int = Field(1, ge=1, description="measured runs per trial; the report gives mean and CV")
    sweep: Sweep | None = Field(None, description="loads measured one after the other in the same trial")

    @field_validator("input_len", "output_len", mode="before")
    @classmethod
    def _lens(cls, v: Any) -> Any:
        return _len_shorthand(v)

    @field_validator("arrival", mode="before")
    @classmethod
    def _arrival(cls, v: Any) -> Any:
        return {"mode": v} if isinstance(v, str) else v
