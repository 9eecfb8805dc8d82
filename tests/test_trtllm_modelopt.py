"""The PyTorch backend's build step for real: ModelOpt PTQ of the tiny model on the CPU, exported and verified.

Each build goes through the engine's own path (TrialPlan -> build key -> EngineCache -> the engine's
build in a child process), so what is tested is what a trial does; only TensorRT-LLM's load of the
checkpoint cannot run here. The exported checkpoint is checked the way TensorRT-LLM reads it:
hf_quant_config.json, the quantized weights' dtypes and their scale tensors, and its size.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("modelopt", reason="nvidia-modelopt is not installed")

from safetensors import safe_open  # noqa: E402

from workbench.engines.base import DeviceInfo  # noqa: E402
from workbench.engines.trtllm import TrtllmEngine  # noqa: E402
from workbench.spec import load_spec  # noqa: E402
from workbench.trials.cache import EngineCache  # noqa: E402
from workbench.trials.orchestrator.planning import make_plan  # noqa: E402
from workbench.trials.plan import TrialPlan  # noqa: E402

CPU = DeviceInfo("cpu", "cpu", 8 * 1024**3)


def calib_file(folder: Path, n: int = 24, salt: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "calib.jsonl"
    p.write_text(
        "".join(
            json.dumps({"text": f"Calibration sentence {i}{salt}: the cat sat on mat {i}. " * 3}) + "\n"
            for i in range(n)
        )
    )
    return p


def study(tmp_path: Path, tiny_model: Path, **options) -> Path:
    data = {
        "name": "mo",
        "model": {"path": str(tiny_model), "dtype": "float32"},
        "engine": "trtllm",
        "engine_options": {
            "calib_dataset": "data/calib.jsonl",
            "calib_samples": 16,
            "calib_max_seq_length": 48,
            "calib_batch_size": 4,
            **options,
        },
        "search_space": {"quantization": {"choices": ["none", "fp8", "w4a16_awq"]}},
        "workload": {"num_requests": 4, "input_len": 16, "output_len": 4},
        "trial": {"device": "cpu"},
    }
    p = tmp_path / "studies" / "mo.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def plan_for(spec, tmp_path: Path, **knobs) -> TrialPlan:
    return make_plan(spec, "t", knobs, CPU, tmp_path / "cache", tmp_path / "trial")


def build(spec, tmp_path: Path, **knobs):
    plan = plan_for(spec, tmp_path, **knobs)
    assert plan.build_key is not None
    ctx = plan.open_context()
    return EngineCache(plan.cache_dir).get_or_build(  # the engine's build, as the trial runs it
        "trtllm",
        plan.build_key,
        plan.key_material,
        lambda out: TrtllmEngine(ctx).build(plan.build_knobs, out),
    )


def tensors(ckpt: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    out = {}
    for f in ckpt.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():  # noqa: SIM118 - safe_open is not a dict
                t = st.get_tensor(k)
                out[k] = (str(t.dtype).removeprefix("torch."), tuple(t.shape))
    return out


def bf16_bytes(tiny_model: Path) -> int:
    """The source checkpoint's size had it been stored in bfloat16 (it is float32)."""
    total = 0
    with safe_open(str(tiny_model / "model.safetensors"), "pt") as st:
        for k in st.keys():  # noqa: SIM118 - safe_open is not a dict
            total += st.get_tensor(k).numel() * 2
    return total


@pytest.mark.parametrize(
    "q, kv, algo",
    [
        ("fp8", "fp8", "FP8"),
        ("w4a16_awq", "auto", "W4A16_AWQ"),
    ],
)
def test_modelopt_builds_a_checkpoint_tensorrt_llm_reads(tmp_path, tiny_model, q, kv, algo):
    calib_file(tmp_path / "studies" / "data")
    spec = load_spec(study(tmp_path, tiny_model))
    art = build(spec, tmp_path, quantization=q, kv_cache_dtype=kv)
    ckpt = art.path / "checkpoint"
    hq = json.loads((ckpt / "hf_quant_config.json").read_text())
    assert (
        hq["producer"]["name"] == "modelopt" and hq["producer"]["version"] == art.manifest["modelopt_version"]
    )
    assert hq["quantization"]["quant_algo"] == algo
    assert hq["quantization"]["kv_cache_quant_algo"] == ("FP8" if kv == "fp8" else None)
    assert "lm_head" in hq["quantization"]["exclude_modules"]
    t = tensors(ckpt)
    w = "model.layers.0.self_attn.q_proj"
    if q == "fp8":
        assert t[f"{w}.weight"][0] == "float8_e4m3fn" and t[f"{w}.weight_scale"][1] == ()
        assert f"{w}.input_scale" in t and "model.layers.0.self_attn.k_proj.k_scale" in t  # FP8 KV scales
    elif q == "w4a16_awq":
        assert hq["quantization"]["group_size"] == 128
        assert t[f"{w}.weight"] == ("uint8", (64, 128))  # 128 x 128 int4, two per byte
        assert t[f"{w}.weight_scale"] == ("float32", (128, 1))  # one scale per output row and 128-group
        # AWQ's activation scales: folded into the shared layernorm for q/k/v, kept where nothing precedes
        assert (
            "model.layers.0.self_attn.o_proj.pre_quant_scale" in t and hq["quantization"]["pre_quant_scale"]
        )
    else:
        assert t[f"{w}.weight"][0] == "int8" and t[f"{w}.weight_scale"][1] == (128,)
        assert f"{w}.pre_quant_scale" in t and f"{w}.input_scale" in t
    size = art.manifest["checkpoint_size_bytes"]
    assert size < bf16_bytes(tiny_model), (size, bf16_bytes(tiny_model))
    # built in its own process, its peak recorded apart from the trial's serving memory
    assert art.manifest["build_process"] == "separate" and art.manifest["build_peak"]["rss_bytes"] > 0
    assert art.manifest["calib_samples"] == 16 and art.manifest["steps_s"]["calibrate_quantize"] > 0
    assert (ckpt / "tokenizer_config.json").is_file()  # trtllm-serve CKPT needs the tokenizer beside it


def test_calibration_content_not_its_path_keys_the_build(tmp_path, tiny_model):
    data = tmp_path / "studies" / "data"
    calib_file(data)
    spec = load_spec(study(tmp_path, tiny_model))
    key = plan_for(spec, tmp_path, quantization="fp8").build_key
    # the same study moved elsewhere with its data: the same key
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "studies", moved / "studies")
    spec2 = load_spec(moved / "studies" / "mo.yaml")
    assert plan_for(spec2, tmp_path, quantization="fp8").build_key == key
    # one calibration text changed: another key
    calib_file(moved / "studies" / "data", salt="!")
    assert plan_for(load_spec(moved / "studies" / "mo.yaml"), tmp_path, quantization="fp8").build_key != key
    # the ModelOpt version is part of the key (from the worker's environment)
    assert plan_for(spec, tmp_path, quantization="fp8").key_material["packages"]["nvidia-modelopt"]
    # the unquantized model is not built at all on the PyTorch backend
    assert plan_for(spec, tmp_path, quantization="none").build_key is None


def test_a_relative_calibration_path_is_taken_from_the_study_file(tmp_path, tiny_model, monkeypatch):
    calib_file(tmp_path / "studies" / "data")
    spec = load_spec(study(tmp_path, tiny_model))
    monkeypatch.chdir(tmp_path)  # not the study's folder: data/calib.jsonl is not here
    from workbench.engines.trtllm import build as B

    req = B.modelopt_request(
        plan_for(spec, tmp_path, quantization="fp8").open_context(),
        {"quantization": "fp8", "kv_cache_dtype": "auto"},
    )
    assert len(req["texts"]) == 16 and req["texts"][0].startswith("Calibration sentence 0")
    bad = study(tmp_path, tiny_model, calib_dataset="missing/calib.jsonl")
    from workbench.spec import SpecError

    with pytest.raises(
        SpecError, match=r"engine_options.calib_dataset: .*missing/calib.jsonl does not exist"
    ):
        load_spec(bad)


def test_nvfp4_needs_cuda_and_says_so(tmp_path, tiny_model):
    from workbench.engines.trtllm.modelopt_build import quantize_checkpoint

    with pytest.raises(RuntimeError, match="nvfp4 calibration needs CUDA"):
        quantize_checkpoint({"quantization": "nvfp4", "device": "cpu"}, tmp_path / "x")
