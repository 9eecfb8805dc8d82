"""Every registered engine (built-ins and installed plugins) passes the conformance suite.

trtllm and trtllm-tensorrt run their declaration part only (tensorrt_llm is not installable here); hf also runs for real
on the tiny model; replay answers from the recorded H200 grid.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines import conformance as C
from workbench.engines import engine_names, get_engine_class

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "studies" / "grids" / "h200-llama-3.1-8b-hf.jsonl"
SETUPS = {
    "hf": C.Setup(model_dtype="float32", knobs={"page_size": 16}),
    "replay": C.Setup(options={"grid": GRID.name}, study_dir=str(GRID.parent)),
    "transformers-serve": C.Setup(model_dtype="float32", knobs={"page_size": 16}),
    "openai": C.Setup(options={"url": "http://127.0.0.1:9"}),
}
RUNS_HERE = {"hf", "transformers-serve"}
ENGINES = engine_names()


def test_the_builtin_engines_are_registered():
    assert {"hf", "trtllm", "trtllm-tensorrt", "replay"} <= set(ENGINES)


def setup_for(name: str, tiny_model: Path | None = None) -> C.Setup:
    setup = SETUPS.get(name, C.Setup())
    if name in ("hf", "transformers-serve", "openai") and tiny_model is not None:
        setup = C.Setup(**{**setup.__dict__, "model": str(tiny_model)})
    return setup


@pytest.mark.parametrize("name", ENGINES)
def test_declarations(name):
    C.check_declarations(name)
    C.check_available(name)
    C.check_error_kinds(name)


@pytest.mark.parametrize("name", ENGINES)
def test_feasibility_is_decided_without_heavy_imports(name):
    out = C.check_feasibility_is_light(name, setup_for(name))
    if name in ("trtllm", "trtllm-tensorrt"):
        assert "NVIDIA GPU" in out["cpu"] and out["hopper"] is None


@pytest.mark.parametrize("name", ENGINES)
def test_export_stays_in_its_folder(name, tiny_model, tmp_path):
    C.check_export(name, setup_for(name, tiny_model), tmp_path / "out")


@pytest.mark.parametrize("name", sorted(RUNS_HERE & set(ENGINES)))
def test_open_submit_collect_close(name, tiny_model):
    assert get_engine_class(name).check_available() is None
    C.check_run(name, setup_for(name, tiny_model))


@pytest.mark.parametrize("name", ENGINES)
def test_engine_options_are_validated_once(name, tiny_model, tmp_path):
    C.check_options_validated_once(name, setup_for(name, tiny_model), tmp_path / "out")
