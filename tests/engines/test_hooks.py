"""The engine hooks the rest of the workbench calls: export, the worker's failure kinds.

Bug B2 (issue 12): the trtllm engine's "not_installed" failure was no FailureKind, so the worker died
without a result. Bug B4: `export` wrote transformers settings for every engine other than trtllm.
The hf export wrote max_memory_percent for CPU trials, where the runner sizes the cache in num_blocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import small_study
from workbench.engines import BUILTIN
from workbench.engines.base import Artifact, EngineNotInstalled
from workbench.engines.hf import HFEngine
from workbench.engines.trtllm import TrtllmEngine, TrtllmNotInstalled, available
from workbench.export import export, export_context
from workbench.knobs import split_knobs
from workbench.spec import load_spec, validate_spec
from workbench.types import DeviceInfo

PLUGIN = Path(__file__).resolve().parent / "echo_plugin"
CPU_ENV = {"device": {"kind": "cpu", "name": "cpu", "arch": "cpu", "total_memory_bytes": 24 * 1024**3}}
H100_ENV = {
    "device": {"kind": "cuda", "name": "NVIDIA H100", "arch": "sm_90", "total_memory_bytes": 85 * 10**9}
}


@pytest.fixture
def echo_registered(monkeypatch):
    """The echo plugin engine, registered in this process (the plugin test installs it for real)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.setitem(BUILTIN, "echo", "wb_echo_engine:EchoEngine")


def test_export_writes_the_engines_own_files_never_hf_settings(echo_registered, tiny_model, tmp_path):
    spec = validate_spec({**small_study(tiny_model), "engine": "echo", "search_space": {"max_batch_size": 4}})
    knobs = {"max_batch_size": 4, "kv_cache_fraction": 0.5, "max_num_tokens": 256, "quantization": "none"}
    files = export(spec, 3, knobs, {"output_tok_s": 10.0}, tmp_path / "out", environment=CPU_ENV)
    names = {f.name for f in files}
    assert names == {"echo.txt", "trial.json", "README.md"}
    assert not (tmp_path / "out" / "continuous_batching.yaml").exists()
    assert "max_batch_size=4" in (tmp_path / "out" / "echo.txt").read_text()


def test_hf_export_writes_what_the_runner_used_on_cpu_and_gpu(tiny_model, tmp_path):
    spec = validate_spec(small_study(tiny_model))
    knobs = {**HFEngine.default_knobs(), "kv_cache_fraction": 0.5, "page_size": 16, "max_batch_size": 4}
    export(spec, 1, knobs, {}, tmp_path / "cpu", environment=CPU_ENV)
    doc = yaml.safe_load((tmp_path / "cpu" / "continuous_batching.yaml").read_text())
    cb = doc["continuous_batching_config"]
    assert "max_memory_percent" not in cb and doc["device"] == "cpu"
    ctx = export_context(spec, 1, knobs, CPU_ENV)
    assert ctx.device.kind == "cpu" and ctx.cpu_kv_budget_gb == 0.01
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    runner = HFEngine(ctx).open(Artifact(tiny_model, None, {}), runtime)
    try:
        assert cb["num_blocks"] == runner.resolved_config["num_blocks"]
        assert cb["max_requests_per_batch"] == 4 and cb["page_size"] == 16
    finally:
        runner.close()
    export(spec, 1, knobs, {}, tmp_path / "gpu", environment=H100_ENV)
    cb = yaml.safe_load((tmp_path / "gpu" / "continuous_batching.yaml").read_text())[
        "continuous_batching_config"
    ]
    assert cb["max_memory_percent"] == 0.5 and "num_blocks" not in cb
    assert export_context(spec, 1, knobs, H100_ENV).device.compute_capability == (9, 0)


def test_trtllm_not_installed_is_an_engine_not_installed_error():
    assert issubclass(TrtllmNotInstalled, EngineNotInstalled)
    assert TrtllmNotInstalled.kind == "not_installed"


@pytest.mark.skipif(available(), reason="tensorrt_llm is installed here")
def test_worker_records_a_missing_engine_as_not_installed(write_study, tmp_path):
    """The real worker process, a trtllm plan, no tensorrt_llm: a FAILED result, never a dead worker."""
    from workbench.trials.orchestrator.planning import make_plan

    spec = load_spec(write_study(engine="trtllm", search_space={"max_batch_size": {"choices": [8]}}))

    cpu = DeviceInfo("cpu", "cpu", 24 * 1024**3)
    plan = make_plan(spec, "nt", TrtllmEngine.default_knobs(), cpu, tmp_path / "cache", tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "plan.json").write_text(plan.model_dump_json())
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.trials.worker",
            str(tmp_path / "plan.json"),
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "FAILED" and result["failure"]["kind"] == "not_installed"
    assert "tensorrt_llm==1.2.1" in result["failure"]["message"]
    assert "release container" in result["failure"]["message"]
