"""The metric registry: each metric declared once; what reads it; the two derived metrics."""

from __future__ import annotations

import sys
import types

import pytest

from workbench import metric_registry as R
from workbench.format import STATUS_EXTRA
from workbench.metrics import METRIC_NAMES
from workbench.tracking.results import RATIO_METRICS
from workbench.tracking.view import KEY_METRICS
from workbench.trials.worker.energy import EnergyMeter


def test_every_reader_takes_its_metric_list_from_the_registry():
    assert frozenset(R.METRICS) == METRIC_NAMES
    assert R.shown_in("status") == STATUS_EXTRA and R.shown_in("vs_baseline") == RATIO_METRICS
    assert KEY_METRICS[:-1] == R.shown_in("mlflow_columns")
    for m in R.METRICS.values():
        assert m.better in (None, "higher", "lower") and set(m.shown) <= set(R.Place.__args__), m.name
        assert not (m.estimate and "vs_baseline" in m.shown), m.name  # an estimate is not a measured ratio
    assert R.label("roofline_fraction") == "roofline (est.)" and R.label("unknown") == "unknown"


def test_cost_per_million_output_tokens():
    d = R.DeriveInput({"output_tok_s": 2000.0}, {}, usd_per_gpu_hour=3.6, gpus=2)
    # 2 GPUs at $3.6/h = $0.002/s; a million tokens at 2000 tok/s take 500 s: $1.00
    assert R.derive(d)["usd_per_m_output_tokens"] == pytest.approx(1.0)
    assert "usd_per_m_output_tokens" not in R.derive(R.DeriveInput({"output_tok_s": 2000.0}, {}))
    assert "usd_per_m_output_tokens" not in R.derive(R.DeriveInput({"output_tok_s": 0.0}, {}, 3.6))


def test_energy_per_token_from_an_nvml_window(monkeypatch):
    """The meter reads NVML's total-energy counter (mJ) at the window's ends; a stand-in with
    nvidia-ml-py's function names counts 1.5 J per read."""
    reads = iter([10_000, 11_500])
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
        nvmlDeviceGetTotalEnergyConsumption=lambda h: next(reads),
    )
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    meter = EnergyMeter("cuda", 0)
    meter.start()
    block = meter.block(output_tokens=300)
    assert block["joules"] == pytest.approx(1.5) and block["output_tokens"] == 300
    got = R.derive(R.DeriveInput({}, {"energy": block}))
    assert got == {"energy_j_per_output_token": pytest.approx(0.005)}
    cpu = EnergyMeter("cpu", None)
    cpu.start()
    assert cpu.block(300) is None  # no counter: no figure, never zero
