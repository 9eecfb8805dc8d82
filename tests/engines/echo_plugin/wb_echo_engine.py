"""A tiny workbench engine in its own package: echoes the prompt's tokens back, no torch needed.

The test suite installs this package into a temporary virtual environment to prove that an engine
registered through the `workbench.engines` entry point is seen by the registry and by the trial worker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.engines.base import (
    Artifact,
    DeviceInfo,
    Engine,
    EngineError,
    FeasibilityContext,
    Request,
    RequestRecord,
)
from workbench.engines.runner import Runner, RunnerStats
from workbench.knobs import KV_CACHE_FRACTION, MAX_BATCH_SIZE, MAX_NUM_TOKENS, QUANTIZATION, KnobDef

BYTES_PER_TOKEN = 64


class EchoError(EngineError):
    kind = "engine_error"


class EchoRunner(Runner):
    def __init__(self, knobs: dict[str, Any], budget_gb: float):
        self.vocab_size = 1000
        self.kv_cache_tokens = max(1, int(knobs[KV_CACHE_FRACTION] * budget_gb * 1024**3 // BYTES_PER_TOKEN))
        self.resolved_config = {
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_batch_size": knobs[MAX_BATCH_SIZE],
        }
        self._done: list[RequestRecord] = []

    def submit(self, request: Request) -> None:
        arrival = time.perf_counter()
        out = [request.input_ids[i % len(request.input_ids)] for i in range(request.max_new_tokens)]
        times = []
        for _ in out:
            time.sleep(0.001)
            times.append(time.perf_counter())
        rec = RequestRecord(
            request.id, len(request.input_ids), arrival, times, times[-1] if times else arrival, out
        )
        self._done.append(rec)

    def collect(self, timeout: float) -> list[RequestRecord]:
        done, self._done = self._done, []
        return done

    def stats(self) -> RunnerStats:
        return RunnerStats(
            weights_bytes=1024,
            kv_cache_tokens=self.kv_cache_tokens,
            kv_bytes_per_token=BYTES_PER_TOKEN,
            dtype="int32",
            scheduling_policy="fifo",
        )

    def close(self) -> None:
        self._done = []


class EchoEngine(Engine):
    name = "echo"
    version = "1"
    knobs = {
        MAX_BATCH_SIZE: KnobDef(MAX_BATCH_SIZE, "int", False, 8, "requests at once", low=1),
        KV_CACHE_FRACTION: KnobDef(
            KV_CACHE_FRACTION,
            "float",
            False,
            0.5,
            "share of the budget",
            low=0.0,
            high=1.0,
            low_exclusive=True,
        ),
        MAX_NUM_TOKENS: KnobDef(MAX_NUM_TOKENS, "int", False, 256, "tokens per step", low=1),
        QUANTIZATION: KnobDef(QUANTIZATION, "categorical", True, "none", "none only", choices=("none",)),
    }

    @classmethod
    def infeasible_reason(
        cls, knobs: dict[str, Any], device: DeviceInfo, context: FeasibilityContext
    ) -> str | None:
        return None if device.kind == "cpu" else "the echo engine runs on the CPU only"

    @classmethod
    def needs_build(cls, build_knobs: dict[str, Any]) -> bool:
        return False

    def export(self, knobs: dict[str, Any], out: Path) -> list[Path]:
        p = out / "echo.txt"
        p.write_text("".join(f"{k}={v}\n" for k, v in sorted(knobs.items())))
        return [p]

    def build(self, build_knobs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
        raise EchoError("the echo engine builds nothing")

    def open(self, artifact: Artifact, runtime_knobs: dict[str, Any]) -> Runner:
        ctx = self.ctx
        return EchoRunner(runtime_knobs, ctx.cpu_kv_budget_gb)
