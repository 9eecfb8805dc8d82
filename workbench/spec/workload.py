"""The workload section of a study: how many requests, their lengths, their prompts and their arrival."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from workbench.spec.base import Float, Int, _Strict

#: bounds that keep a workload buildable: a prompt of a million tokens is beyond any model here, and
#: the prompts are built as token lists in memory before the run (8 bytes a token)
MAX_TOKENS_PER_REQUEST = 1 << 20
MAX_REQUESTS = 1_000_000
MAX_WORKLOAD_TOKENS = 100_000_000


class FixedLen(_Strict):
    dist: Literal["fixed"]
    value: Int = Field(ge=1, le=MAX_TOKENS_PER_REQUEST)


class UniformLen(_Strict):
    dist: Literal["uniform"]
    min: Int = Field(ge=1, le=MAX_TOKENS_PER_REQUEST)
    max: Int = Field(ge=1, le=MAX_TOKENS_PER_REQUEST)

    @model_validator(mode="after")
    def _order(self) -> UniformLen:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class NormalLen(_Strict):
    """trtllm-bench's token-norm-dist: a normal distribution, clipped to [min, max]."""

    dist: Literal["normal"]
    mean: Float = Field(gt=0, le=MAX_TOKENS_PER_REQUEST)
    std: Float = Field(ge=0, le=MAX_TOKENS_PER_REQUEST)
    min: Int = Field(1, ge=1, le=MAX_TOKENS_PER_REQUEST)
    max: Int | None = Field(None, ge=1, le=MAX_TOKENS_PER_REQUEST)


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
    max_input_len: Int | None = Field(
        None, ge=1, le=MAX_TOKENS_PER_REQUEST, description="left-truncate longer prompts"
    )


class Burst(_Strict):
    """Every request arrives at once: offline maximum throughput (trtllm-bench's default)."""

    mode: Literal["burst"]


class Rate(_Strict):
    """Poisson arrivals at a mean rate in requests per second (seeded, so reproducible)."""

    mode: Literal["rate"]
    rate: Float = Field(gt=0)


class Concurrency(_Strict):
    """A fixed number of requests in flight (trtllm-bench --concurrency)."""

    mode: Literal["concurrency"]
    concurrency: Int = Field(ge=1, le=MAX_REQUESTS)


Arrival = Annotated[Burst | Rate | Concurrency, Field(discriminator="mode")]


#: the default fewest requests of a load-scaled or time-budgeted sweep point
MIN_POINT_REQUESTS = 8


class LoadSearch(_Strict):
    """The highest load meeting the study's `slo:`, searched in the trial instead of a fixed list: gallop
    from the low bound (x `growth`) until a load fails, bisect to `resolution`, then run the lower end
    `repeats` times (it passes by majority). Each probe is a sweep point (its length as the sweep says)."""

    concurrency: tuple[Int, Int] | None = Field(None, description="[low, high] concurrency")
    rate: tuple[Float, Float] | None = Field(None, description="[low, high] requests/s")
    growth: Float = Field(2.0, gt=1, le=16, description="the gallop's factor")
    resolution: Float = Field(
        0.1, ge=0, lt=1, description="bisection stops when the bracket is this narrow (relative; >= 1 slot)"
    )
    repeats: Int = Field(2, ge=1, le=9, description="runs of the lower end; it passes by majority")
    max_probes: Int = Field(16, ge=2, le=200, description="the most probe runs of one trial")

    @model_validator(mode="after")
    def _bounds(self) -> LoadSearch:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError(
                "a load search gives exactly one of `concurrency: [low, high]` or `rate: [low, high]`"
            )
        low, high = self.concurrency or self.rate or (0, 0)
        if not 0 < low <= high:
            raise ValueError(f"a load search needs 0 < low <= high; got [{low}, {high}]")
        return self

    @property
    def axis(self) -> str:
        return "concurrency" if self.concurrency is not None else "rate"

    @property
    def bounds(self) -> tuple[float, float]:
        low, high = self.concurrency or self.rate or (0, 0)
        return float(low), float(high)


class Sweep(_Strict):
    """Several loads in one trial, measured one after the other. How many requests a point runs:

    - neither `requests_per_load` nor `duration_s`: `num_requests` at every load (costly at low loads:
      256 requests at concurrency 1 take 256 request latencies one after another);
    - `requests_per_load: R`: max(min_requests, ceil(R x load)), so every point lasts about as long;
    - `duration_s: T`: as many as it issues in T seconds from its first request (at least min_requests);
      with `requests_per_load` too, at most its count: whichever ends first.
    """

    concurrency: list[int] | None = Field(None, min_length=1)
    rate: list[float] | None = Field(None, min_length=1)
    search: LoadSearch | None = Field(
        None, description="search the highest load meeting `slo:` instead of a fixed list of loads"
    )
    requests_per_load: Float | None = Field(
        None,
        gt=0,
        le=MAX_REQUESTS,
        description="a point at load L runs max(min_requests, ceil(this x L)) requests; on the concurrency "
        "axis L is the concurrency (this = requests per slot), on the rate axis L is requests/s (this = "
        "seconds of arrivals: this x rate requests arrive in about this many seconds)",
    )
    min_requests: Int = Field(
        MIN_POINT_REQUESTS,
        ge=1,
        le=MAX_REQUESTS,
        description="the fewest requests a point runs with requests_per_load or duration_s, so a "
        "concurrency-1 point still has enough samples for its percentiles (p95 of 2 requests is their max)",
    )
    duration_s: Float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="a point issues requests for this many seconds from its first one (at least "
        "min_requests; with requests_per_load, at most its count: whichever ends first), then waits for "
        "those in flight; its requests are drawn one by one from the seed, so it runs a prefix of the same "
        "sequence every time",
    )

    @model_validator(mode="after")
    def _one_axis(self) -> Sweep:
        given = [k for k in ("concurrency", "rate", "search") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a sweep gives exactly one of `concurrency` (a list), `rate` (a list) or `search` (bounds)"
            )
        values = self.concurrency or self.rate or []
        if any(v <= 0 for v in values) or sorted(values) != list(values):
            raise ValueError("sweep loads must be positive and increasing")
        if (
            self.min_requests != MIN_POINT_REQUESTS
            and self.requests_per_load is None
            and self.duration_s is None
        ):
            raise ValueError(
                "min_requests applies only with requests_per_load or duration_s "
                "(without them every point runs num_requests)"
            )
        return self

    @property
    def axis(self) -> str:
        if self.search is not None:
            return self.search.axis
        return "concurrency" if self.concurrency is not None else "rate"

    @property
    def loads(self) -> list[float]:
        """The fixed loads; a search's are decided as it runs (its bounds here, for sizing)."""
        if self.search is not None:
            return list(self.search.bounds)
        return [float(v) for v in (self.concurrency or self.rate or [])]

    def requests_at(self, load: float, num_requests: int) -> int | None:
        """Requests of the point at `load`; with `duration_s`, the most it may run (None: no cap, the
        time budget ends it)."""
        if self.requests_per_load is not None:
            return max(self.min_requests, math.ceil(self.requests_per_load * load))
        return None if self.duration_s is not None else num_requests


class WorkloadSpec(_Strict):
    num_requests: Int = Field(64, ge=1, le=MAX_REQUESTS)
    warmup_requests: Int = Field(4, ge=0, le=MAX_REQUESTS)
    input_len: LengthDist = FixedLen(dist="fixed", value=128)
    output_len: LengthDist = FixedLen(dist="fixed", value=128)
    ignore_eos: bool = Field(
        True, description="generate exactly output_len tokens, as trtllm-bench --eos_id -1"
    )
    dataset: DatasetSpec | None = None
    arrival: Arrival = Burst(mode="burst")
    seed: Int = 0
    repeats: Int = Field(1, ge=1, le=100, description="measured runs per trial; the report gives mean and CV")
    sweep: Sweep | None = Field(None, description="loads measured one after the other in the same trial")

    @field_validator("input_len", "output_len", mode="before")
    @classmethod
    def _lens(cls, v: Any) -> Any:
        return _len_shorthand(v)

    @field_validator("arrival", mode="before")
    @classmethod
    def _arrival(cls, v: Any) -> Any:
        return {"mode": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _buildable(self) -> WorkloadSpec:
        """All prompts are built before the run: their tokens must fit in memory."""
        if self.dataset is not None:
            return self
        d = self.input_len
        longest = d.value if isinstance(d, FixedLen) else d.max if d.max is not None else d.mean + 4 * d.std
        n, what = self.num_requests, "num_requests"
        if self.sweep is not None and self.sweep.requests_per_load is not None:
            n = max(self.sweep.requests_at(load, n) or 0 for load in self.sweep.loads)
            what = "the largest sweep point's requests"
        total = (n + self.warmup_requests) * longest
        if total > MAX_WORKLOAD_TOKENS:
            raise ValueError(
                f"({what} + warmup_requests) x the longest input_len is {total:,.0f} prompt tokens; "
                f"at most {MAX_WORKLOAD_TOKENS:,} (the prompts are built in memory before the run)"
            )
        return self
