"""The highest load meeting the SLO, searched within one trial: galloping, then bisection, the boundary
probes repeated.

A fixed sweep spends most of a trial far from the answer (the reference run: 161 of 202 s at
concurrency 1); AIPerf's SLA search, GuideLLM's peak-goodput search and vLLM's max-concurrency search
probe adaptively instead. `LoadSearch` is that search as a pure state machine (no clock, no engine),
so the worker drives it with real probes and the tests with a synthetic server:

1. **Gallop** from `low`, multiplying by `growth` while the load meets the targets, until one fails
   or `high` passes: the bracket [last pass, first fail].
2. **Bisect** the bracket until it is within `resolution` (relative; on the concurrency axis at least
   one request slot), one run per probe: a probe only narrows the bracket.
3. **Confirm** the lower end, the boundary: it runs until it has `repeats` runs and passes when more
   than half of them meet the targets (p95 TTFT and TPOT within them, no errors), so one noisy run
   does not make the answer; where it fails, the bracket moves down and bisection goes on. The first failure while
   galloping is decided by the same majority (with `repeats` 2 one failure already decides: a load
   passes only when both its runs meet the targets, which is the conservative reading of noise).

`max_probes` bounds the runs; the result says whether the bracket closed. Loads are ints on the
concurrency axis and floats (requests/s) on the rate axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadSearch:
    """The search's state: feed it each probe's verdict (`record`), ask it for the next load (`next_load`)."""

    axis: str
    low: float
    high: float
    growth: float = 2.0
    resolution: float = 0.1
    repeats: int = 2
    max_probes: int = 16
    #: load -> verdicts of its runs, in the order they ran
    runs: dict[float, list[bool]] = field(default_factory=dict)
    #: every probe in order: (load, meets, phase)
    history: list[tuple[float, bool, str]] = field(default_factory=list)
    _phase: str = "gallop"
    _lo: float | None = None  # the highest load that passes (confirmed where the phase says so)
    _hi: float | None = None  # the lowest load that fails
    _next: float | None = None

    def __post_init__(self) -> None:
        self._next = self._round(self.low)

    # ------------------------------------------------------------------ what the driver calls
    def next_load(self) -> float | None:
        """The load to probe next; None when the search has ended (bracket closed or probes spent)."""
        if self._next is None or len(self.history) >= self.max_probes:
            return None
        return self._next

    def record(self, load: float, meets: bool) -> None:
        """One run at `load` met the targets (or not); decides the next load."""
        self.runs.setdefault(load, []).append(meets)
        self.history.append((load, meets, self._phase))
        if self._phase == "gallop":
            self._gallop(load, meets)
        else:
            self._bisect_or_confirm(load, meets)

    def result(self) -> dict[str, Any]:
        """The bracket: `slo_max_load` (0 when even `low` fails), the first failing load above it (None
        when `high` passed), whether it closed within the resolution with its lower end confirmed."""
        return {
            "axis": self.axis,
            "slo_max_load": self._lo or 0.0,
            "bracket_low": self._lo or 0.0,
            "bracket_high": self._hi,
            "closed": self._next is None,
            "probes": len(self.history),
            "capped_at_high": self._hi is None and self._lo == self._round(self.high),
        }

    # ------------------------------------------------------------------------------- the phases
    def _gallop(self, load: float, meets: bool) -> None:
        if meets:
            self._lo = load
            self._grow(load)
            return
        self._phase = "check"  # the first failure is a boundary probe too: its majority decides
        self._bisect_or_confirm(load, meets)

    def _grow(self, load: float) -> None:
        """Gallop on from a passing load (to `high` at most; at `high`, confirm it and end)."""
        self._phase = "gallop"
        top = self._round(self.high)
        if load >= top:
            self._phase = "confirm"
            self._next = self._confirm_or_end()
            return
        grown = self._round(load * self.growth)
        self._next = min(top, grown if grown > load else self._step_up(load))

    def _bisect_or_confirm(self, load: float, meets: bool) -> None:
        # a bisection probe runs once (it only narrows the bracket); the ends are decided by majority
        verdict = meets if self._phase == "bisect" else self._verdict(load)
        if verdict is None:  # more runs of this load first
            self._next = load
            return
        if self._phase == "check":
            if verdict:  # the failure was noise: gallop on
                self._lo = load
                self._grow(load)
                return
            self._hi = load
        elif verdict:
            self._lo = load if self._lo is None or load >= self._lo else self._lo
        else:
            self._hi = load if self._hi is None or load < self._hi else self._hi
            if self._lo is not None and load <= self._lo:  # the lower end failed its confirmation
                self._lo = self._highest_pass_below(load)
        self._next = self._after_bracket()

    def _after_bracket(self) -> float | None:
        """The midpoint while the bracket is wide, then the lower end's confirmation, then the end."""
        lo = self._lo
        if lo is None:  # nothing passes: the low end's own confirmation decides (it failed: done)
            return None
        if self._hi is not None and not self._narrow(lo, self._hi):
            self._phase = "bisect"
            return self._mid(lo, self._hi)
        self._phase = "confirm"
        return self._confirm_or_end()

    def _confirm_or_end(self) -> float | None:
        lo = self._lo
        if lo is None or len(self.runs.get(lo, [])) >= self.repeats:
            return None
        return lo

    # ---------------------------------------------------------------------------------- helpers
    def _verdict(self, load: float) -> bool | None:
        """Majority of `repeats` runs (None until enough have run; a tie fails)."""
        runs = self.runs[load]
        need = self.repeats
        if len(runs) < need:
            passed, failed = sum(runs), len(runs) - sum(runs)
            if passed * 2 > need or failed * 2 >= need:  # already decided either way
                return passed * 2 > need
            return None
        return sum(runs) * 2 > len(runs)

    def _highest_pass_below(self, load: float) -> float | None:
        """The highest load below `load` whose runs so far pass by majority (gallop passes count once)."""
        ok = [x for x, v in self.runs.items() if x < load and sum(v) * 2 > len(v)]
        return max(ok) if ok else None

    def _narrow(self, lo: float, hi: float) -> bool:
        if self.axis == "concurrency":
            return hi - lo <= max(1.0, math.floor(lo * self.resolution))
        return (hi - lo) <= lo * self.resolution

    def _mid(self, lo: float, hi: float) -> float:
        if self.axis == "concurrency":
            return float(int((lo + hi) // 2))
        return round((lo + hi) / 2, 6)

    def _step_up(self, load: float) -> float:
        return load + 1 if self.axis == "concurrency" else load * 1.5

    def _round(self, load: float) -> float:
        return float(max(1, int(load))) if self.axis == "concurrency" else float(load)
