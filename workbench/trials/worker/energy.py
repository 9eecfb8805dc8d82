"""GPU energy over the measured window, from NVML's total-energy counter (worker side).

`nvmlDeviceGetTotalEnergyConsumption` gives millijoules since the driver loaded (Volta and newer); the
difference between the start and the end of the measured requests is the window's energy, whole-device
(other processes on the GPU count too: the figure is labelled so). No GPU, no NVML, or a GPU without the
counter gives None: the metric is then absent, never zero.
"""

from __future__ import annotations

from typing import Any


class EnergyMeter:
    def __init__(self, device_kind: str, device_index: int | None) -> None:
        self._nvml: Any = None
        self._handle: Any = None
        self._start_mj: int | None = None
        if device_kind != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index or 0)
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no NVML here: no energy figure, not a failed trial
            self._nvml = None

    def _read_mj(self) -> int | None:
        if self._nvml is None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001 - a GPU without the counter (pre-Volta)
            return None

    def start(self) -> None:
        self._start_mj = self._read_mj()

    def block(self, output_tokens: int) -> dict[str, Any] | None:
        """The report's `energy` block for the window since `start` (None without a counter)."""
        end = self._read_mj()
        if self._start_mj is None or end is None:
            return None
        return {
            "joules": (end - self._start_mj) / 1000.0,
            "output_tokens": int(output_tokens),
            "source": "nvml_total_energy_consumption (whole device)",
        }
