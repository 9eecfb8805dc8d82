"""Shared fixtures: a tiny random-weight model made once per session, and small study files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: every time limit in the tests is a guard against a hang, never a measurement: generous by default,
#: and multiplied by WORKBENCH_TEST_TIMEOUT_SCALE on slow or busy machines
TIMEOUT_SCALE = float(os.environ.get("WORKBENCH_TEST_TIMEOUT_SCALE", "1") or 1)


def scaled(seconds: float) -> float:
    """A test's time limit on this machine (speed is measured by benchmarks/, never asserted)."""
    return seconds * TIMEOUT_SCALE


#: a 64-question GSM8K sample (MIT, tests/fixtures/gsm8k/README.md): the tests need nothing beside the checkout
GSM8K_DIR = ROOT / "tests" / "fixtures" / "gsm8k"


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every run's files (trials, engine cache) out of the checkout."""
    home = tmp_path_factory.mktemp("workbench-home")
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault(
        "WORKBENCH_FIGURE_PNG", "0"
    )  # rendering PNGs costs seconds per study; test_ui turns it on


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workbench.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def project_tiny_model() -> Path:
    """The tiny model where the example studies point (models/tiny-llama, git-ignored): made on first use,
    as `make demo` and the notebooks do, since a study's local model path must exist to validate."""
    from workbench.tiny_model import ensure_tiny_model

    return ensure_tiny_model(ROOT / "models" / "tiny-llama")


def small_study(tiny_model: Path, **changes: Any) -> dict[str, Any]:
    """A study dict with a workload small enough for a few seconds per trial on 2 cores."""
    data: dict[str, Any] = {
        "name": "t",
        "model": {"path": str(tiny_model), "dtype": "float32"},
        "engine": "hf",
        "search_space": {
            "max_batch_size": {"choices": [4, 8, 16]},
            "kv_cache_fraction": {"low": 0.1, "high": 0.9},
            "max_num_tokens": {"choices": [64, 128, 256]},
            "quantization": {"choices": ["none", "int8"]},
            "page_size": 16,
        },
        "baseline": {"max_num_tokens": 256},
        "workload": {
            "num_requests": 8,
            "warmup_requests": 1,
            "input_len": {"dist": "uniform", "min": 8, "max": 40},
            "output_len": 8,
        },
        "trial": {"timeout_s": scaled(900), "cpu_kv_budget_gb": 0.01, "threads": 1},
    }
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return data


@pytest.fixture
def write_study(tmp_path: Path, tiny_model: Path):
    def _write(**changes: Any) -> Path:
        p = tmp_path / "study.yaml"
        p.write_text(yaml.safe_dump(small_study(tiny_model, **changes), sort_keys=False))
        return p

    return _write
