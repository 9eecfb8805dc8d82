"""The hf engine: knob mapping into transformers' continuous batching, feasibility, and real generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import small_study
from workbench.engines.base import Artifact, DeviceInfo, FeasibilityContext, Request
from workbench.engines.hf import HFEngine, cpu_num_blocks
from workbench.knobs import split_knobs
from workbench.spec import validate_spec
from workbench.trials.orchestrator.planning import make_plan
from workbench.trials.plan import TrialPlan

CPU = DeviceInfo("cpu", "cpu", 24 * 1024**3)
A100 = DeviceInfo("cuda", "NVIDIA A100", 80 * 1024**3, (8, 0), 0)
H200 = DeviceInfo("cuda", "NVIDIA H200", 141 * 1024**3, (9, 0), 0)


def test_build_time_declaration():
    build, runtime = split_knobs(HFEngine.knobs, HFEngine.default_knobs())
    assert build == {"quantization": "none"}
    assert {"max_batch_size", "kv_cache_fraction", "max_num_tokens"} <= set(runtime)
    assert not HFEngine.needs_build({"quantization": "none"}) and HFEngine.needs_build(
        {"quantization": "int8"}
    )


@pytest.mark.parametrize(
    ("knobs", "device", "dtype", "expect"),
    [
        ({"quantization": "int4"}, CPU, "bfloat16", "needs a CUDA GPU; on CPU use int4_intx"),
        ({"quantization": "int4"}, H200, "float32", "supports only model.dtype: bfloat16"),
        ({"quantization": "int4"}, H200, "bfloat16", None),
        ({"quantization": "float8_dynamic"}, CPU, "auto", "compute capability >= 8.9"),
        ({"quantization": "float8_dynamic"}, A100, "auto", "this is compute capability 8.0"),
        ({"quantization": "float8_dynamic"}, H200, "auto", None),
        ({"quantization": "int8"}, CPU, "float32", None),
        ({"quantization": "float8"}, CPU, "float32", None),
        ({"cuda_graphs": True}, CPU, "auto", "cuda_graphs needs a CUDA GPU"),
    ],
)
def test_feasibility(knobs, device, dtype, expect):
    reason = HFEngine.infeasible_reason(knobs, device, FeasibilityContext(model_dtype=dtype))
    if expect is None:
        assert reason is None
    else:
        assert expect in reason


def test_cpu_num_blocks():
    # 0.5 x 1 GiB / (2048 bytes per token x 32 tokens per block)
    assert cpu_num_blocks(0.5, 1.0, 2048, 32) == 8192
    assert cpu_num_blocks(1e-9, 1.0, 2048, 32) == 1


def _plan(tiny_model: Path, knobs: dict, **changes) -> TrialPlan:
    spec = validate_spec(small_study(tiny_model, **changes))
    return make_plan(spec, "x", knobs, CPU, Path("/tmp/unused-cache"), Path("/tmp/unused-out"))


def test_knobs_reach_transformers_and_generation_is_exact(tiny_model):
    knobs = {
        **HFEngine.default_knobs(),
        "max_batch_size": 3,
        "max_num_tokens": 48,
        "kv_cache_fraction": 0.5,
        "page_size": 16,
        "scheduler": "prefill_first",
        "block_reuse": False,
    }
    plan = _plan(tiny_model, knobs)
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    runner = HFEngine(plan.open_context()).open(Artifact(tiny_model, None, {}), runtime)
    try:
        cfg = runner.resolved_config
        assert cfg["max_requests_per_batch"] == 3
        assert cfg["max_batch_tokens"] == 48
        assert cfg["scheduler_type"] == "prefill_first" and cfg["allow_block_sharing"] is False
        expected_blocks = cpu_num_blocks(0.5, 0.01, runner.kv_bytes_per_token, 16)
        assert cfg["num_blocks"] == expected_blocks
        assert runner.stats().kv_cache_tokens == expected_blocks * 16
        # tiny model: 4 layers x 2 kv heads x 32 head dim x K and V x 4 bytes
        assert runner.kv_bytes_per_token == 4 * 2 * 32 * 2 * 4
        reqs = [Request(f"r{i}", list(range(10, 10 + 20 + i)), 6) for i in range(5)]
        recs = runner.generate(reqs)
        assert [r.output_len for r in recs] == [6] * 5
        assert all(r.error is None and len(r.output_ids) == 6 for r in recs)
        assert all(r.arrival < r.token_times[0] <= r.token_times[-1] for r in recs)
        # greedy continuous batching equals plain greedy generate
        import torch

        ids = torch.tensor([reqs[0].input_ids])
        ref = runner.model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)[
            0, ids.shape[1] :
        ]
        assert recs[0].output_ids == ref.tolist()
    finally:
        runner.close()


def test_quantized_build_is_smaller_and_reloads(tiny_model, tmp_path):
    knobs = {**HFEngine.default_knobs(), "quantization": "int8", "page_size": 16}
    plan = _plan(tiny_model, knobs)
    build, runtime = split_knobs(HFEngine.knobs, knobs)
    out = tmp_path / "art"
    out.mkdir()
    info = HFEngine(plan.open_context()).build(build, out)
    assert set(info["steps_s"]) == {"load_and_quantize", "save"}
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    runner = HFEngine(plan.open_context()).open(Artifact(out, "k", {"build_knobs": build}), runtime)
    try:
        assert type(runner.model.model.layers[0].mlp.up_proj.weight).__name__ == "Int8Tensor"
        # int8 linear weights: about a quarter of fp32 (embeddings stay fp32)
        full = sum(p.numel() * 4 for p in runner.model.parameters())
        assert runner.weights_bytes < 0.7 * full
        assert runner.resolved_config["quantization"] == "int8"
        (rec,) = runner.generate([Request("q", list(range(5, 25)), 4)])
        assert rec.output_len == 4 and rec.error is None
    finally:
        runner.close()


def test_without_torchao_unquantized_runs_and_a_quantized_build_says_what_to_install(
    tiny_model, tmp_path, monkeypatch
):
    """torchao is needed by a quantized build only (the H200 run of 2026-12-03 stopped on it at none)."""
    import importlib.util

    from workbench.types import EngineNotInstalled

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torchao" else real(n, *a))
    assert HFEngine.check_available() is None
    knobs = {**HFEngine.default_knobs(), "quantization": "int8"}
    build, _ = split_knobs(HFEngine.knobs, knobs)
    with pytest.raises(EngineNotInstalled, match=r"quantization int8 of the hf engine needs torchao.*\[hf\]"):
        HFEngine(_plan(tiny_model, knobs).open_context()).build(build, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_load_format_dummy_gives_random_weights_in_the_model_shape(tiny_model):
    from safetensors.torch import load_file

    knobs = {**HFEngine.default_knobs(), "page_size": 16}
    plan = _plan(tiny_model, knobs, **{"model.load_format": "dummy"})
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    runner = HFEngine(plan.open_context()).open(Artifact(tiny_model, None, {}), runtime)
    try:
        saved = load_file(str(tiny_model / "model.safetensors"))
        name = "model.layers.0.mlp.up_proj.weight"
        mine = dict(runner.model.named_parameters())[name]
        assert tuple(mine.shape) == tuple(saved[name].shape)  # the architecture of config.json ...
        assert not mine.detach().equal(saved[name])  # ... without its weights
        (rec,) = runner.generate([Request("d", list(range(5, 25)), 4)])
        assert rec.output_len == 4 and rec.error is None
    finally:
        runner.close()


def test_load_format_dummy_quantizes_the_random_weights(tiny_model, tmp_path):
    """Performance studies of quantization need no checkpoint: random weights are quantized in place."""
    knobs = {**HFEngine.default_knobs(), "page_size": 16, "quantization": "int8"}
    assert (
        HFEngine.infeasible_reason(knobs, CPU, FeasibilityContext(model_dtype="float32", load_format="dummy"))
        is None
    )
    plan = _plan(tiny_model, knobs, **{"model.load_format": "dummy"})
    build, runtime = split_knobs(HFEngine.knobs, knobs)
    manifest = HFEngine(plan.open_context()).build(build, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["dummy.json"]  # no 8 B random checkpoint on disk
    runner = HFEngine(plan.open_context()).open(Artifact(tmp_path, "k", manifest), runtime)
    try:
        up = runner.model.model.layers[0].mlp.up_proj.weight
        assert "Int8" in type(up).__name__ or "Affine" in type(up).__name__, type(up)  # a torchao tensor
        assert runner.model.lm_head.weight.dtype.is_floating_point  # lm_head left as it is
        unquantized = 4 * up.numel()  # float32 bytes of that layer
        assert runner.weights_bytes < runner.model.num_parameters() * 4 - unquantized // 2
        (rec,) = runner.generate([Request("d", list(range(5, 25)), 4)])
        assert rec.output_len == 4 and rec.error is None
    finally:
        runner.close()


def test_the_baseline_is_transformers_own_defaults_and_records_what_they_resolve_to(tiny_model):
    from transformers import ContinuousBatchingConfig

    from workbench.engines.hf.config import CPU_DEFAULT_MEMORY_PERCENT, cb_config_args

    knobs = {**HFEngine.default_knobs(), "page_size": 16}
    assert knobs["max_batch_size"] is None and knobs["max_num_tokens"] is None
    assert knobs["kv_cache_fraction"] is None and knobs["cuda_graphs"] is None
    assert knobs["use_async_batching"] == "auto"
    # on a GPU, nothing of the four is passed: ContinuousBatchingConfig() decides
    gpu = cb_config_args(knobs, "cuda", 0.01, None)
    default = ContinuousBatchingConfig()
    assert set(gpu) == {"page_size", "scheduler_type", "allow_block_sharing"}
    assert (
        gpu["scheduler_type"] == default.scheduler_type
        and gpu["allow_block_sharing"] is default.allow_block_sharing
    )
    assert (
        cb_config_args({**knobs, "use_async_batching": True, "cuda_graphs": True}, "cuda", 0.01, None)[
            "use_async_batching"
        ]
        is True
    )
    plan = _plan(tiny_model, knobs)
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    runner = HFEngine(plan.open_context()).open(Artifact(tiny_model, None, {}), runtime)
    try:
        cfg = runner.resolved_config
        assert isinstance(cfg["max_requests_per_batch"], int) and cfg["max_requests_per_batch"] > 0
        assert isinstance(cfg["max_batch_tokens"], int) and cfg["max_batch_tokens"] > 0
        assert cfg["use_cuda_graph"] in ("False", "(False, False)") and cfg["use_async_batching"] == "False"
        assert cfg["num_blocks"] == cpu_num_blocks(
            CPU_DEFAULT_MEMORY_PERCENT, 0.01, runner.kv_bytes_per_token, 16
        )
        assert (
            cfg["auto_knobs"]
            == "cuda_graphs,kv_cache_fraction,max_batch_size,max_num_tokens,use_async_batching"
        )
        recs = runner.generate([Request(f"r{i}", list(range(10, 30)), 4) for i in range(3)])
        assert [r.output_len for r in recs] == [4, 4, 4]
    finally:
        runner.close()


def test_auto_knobs_take_null_and_nothing_else_new():
    mbs = HFEngine.knobs["max_batch_size"]
    assert mbs.check(None) is None and mbs.check(8) == 8
    with pytest.raises(ValueError, match="or null"):
        mbs.check(0)
    with pytest.raises(ValueError):
        HFEngine.knobs["page_size"].check(None)  # a knob with a real default stays required
    assert (
        HFEngine.infeasible_reason(
            {**HFEngine.default_knobs(), "use_async_batching": True},
            CPU,
            FeasibilityContext(model_dtype="float32"),
        )
        == "use_async_batching needs a CUDA GPU"
    )


def test_the_kv_page_keyword_follows_the_installed_transformers():
    """5.17 (the GPU machine's) calls it block_size; passing page_size there failed the H200 hf trial."""
    import dataclasses

    from transformers import ContinuousBatchingConfig

    from workbench.engines.hf.config import cb_config_kwargs

    args = {"page_size": 32, "scheduler_type": "fifo"}

    @dataclasses.dataclass
    class Config517:
        block_size: int = 256
        scheduler_type: str = "fifo"

    assert cb_config_kwargs(Config517, args) == {"block_size": 32, "scheduler_type": "fifo"}
    assert Config517(**cb_config_kwargs(Config517, args)).block_size == 32
    assert args == {"page_size": 32, "scheduler_type": "fifo"}  # the caller's dict is not changed
    real = ContinuousBatchingConfig(**cb_config_kwargs(ContinuousBatchingConfig, args))
    assert getattr(real, "page_size", getattr(real, "block_size", None)) == 32
