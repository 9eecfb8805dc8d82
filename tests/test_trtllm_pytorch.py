"""The trtllm engine (PyTorch backend) against the recorded 1.2.1 facts, and trtllm-tensorrt's defects.

Every TorchLlmArgs keyword the engine passes, every `--config` YAML key and every trtllm-serve /
trtllm-bench flag the export and the cross-check write is checked against
api/tensorrt_llm-1.2.1-pytorch.json (read from the public source, each fact with its path) over the
whole PyTorch knob space. The defect tests below each failed before their fix (issue #13).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workbench.engines.base import DeviceInfo, FeasibilityContext, OpenContext
from workbench.engines.trtllm import TrtllmEngine, crosscheck
from workbench.engines.trtllm import args as TT
from workbench.engines.trtllm import build as B
from workbench.engines.trtllm import feasibility as FT
from workbench.engines.trtllm import knobs as TK
from workbench.engines.trtllm.api import check_cli, check_kwargs, snapshot, strict_api, torch_snapshot
from workbench.engines.trtllm.knobs import TrtllmOptions
from workbench.engines.trtllm_tensorrt import TrtllmTensorrtEngine, resolved_config
from workbench.engines.trtllm_tensorrt import args as T
from workbench.engines.trtllm_tensorrt import build as TB
from workbench.engines.trtllm_tensorrt import feasibility as F
from workbench.engines.trtllm_tensorrt.knobs import TensorrtOptions
from workbench.export import export
from workbench.spec import validate_spec

H200 = DeviceInfo("cuda", "NVIDIA H200", 143_771_000_000, (9, 0), 0)
H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", 85_520_000_000, (9, 0), 0)
A100 = DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", 85_899_345_920, (8, 0), 0)
B200 = DeviceInfo("cuda", "NVIDIA B200", 191_000_000_000, (10, 0), 0)
CPU = DeviceInfo("cpu", "cpu", 24 * 1024**3)
LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
DEFAULTS = TrtllmEngine.default_knobs()
TRT_DEFAULTS = TrtllmTensorrtEngine.default_knobs()
TORCH = TrtllmOptions()  # engine_options of a trtllm study at its defaults
TRT = TensorrtOptions()  # and of a trtllm-tensorrt one


def knobs(**kw):
    return {**DEFAULTS, **kw}


def tknobs(**kw):
    """Knobs of a trtllm-tensorrt trial."""
    return {**TRT_DEFAULTS, **kw}


def torch_space():
    """Every combination of the PyTorch backend's categorical and boolean knobs, numeric ones at their bounds."""
    cats = {
        "quantization": list(TT.TORCH_QUANTIZATIONS),
        "kv_cache_dtype": ["auto", "fp8"],
        "attn_backend": ["TRTLLM", "FLASHINFER"],
        "tokens_per_block": [8, 16, 32, 64, 128],
        "scheduler_policy": list(TK.SCHEDULER_POLICIES),
        "context_chunking_policy": list(TK.CHUNKING_POLICIES),
    }
    bools = [
        "cuda_graphs",
        "cuda_graph_padding",
        "overlap_scheduler",
        "chunked_prefill",
        "enable_block_reuse",
    ]
    numeric = [
        {
            "max_batch_size": 1,
            "max_num_tokens": 1,
            "kv_cache_fraction": 0.01,
            "cuda_graph_max_batch_size": 1,
            "max_input_len": 1,
            "max_seq_len": 2,
        },
        {},
        {
            "max_batch_size": 4096,
            "max_num_tokens": 65536,
            "kv_cache_fraction": 0.99,
            "cuda_graph_max_batch_size": 4096,
            "max_input_len": 131072,
            "max_seq_len": 131072,
        },
    ]
    names = list(cats) + bools
    for i, values in enumerate(itertools.product(*cats.values(), *[[False, True]] * len(bools))):
        yield {**DEFAULTS, **numeric[i % 3], **dict(zip(names, values, strict=True))}


# --------------------------------------------------------------------------- the recorded facts
def test_the_pytorch_record_names_its_sources_and_the_fixed_transcription_errors():
    s = torch_snapshot()
    assert s["imports"]["LLM"] == "tensorrt_llm" and s["backend"] == "pytorch"
    assert all({"what", "path", "read_at"} <= set(f) for f in s["facts"])
    # llm_args.py re-read at v1.2.1 itself (the gh-pages module page generated from 376f7e1, the audit)
    (args_fact,) = [f for f in s["facts"] if f["path"] == "tensorrt_llm/llmapi/llm_args.py"]
    assert "gh-pages@58fb435e" in args_fact["read_at"] and "not_read_at" not in args_fact
    assert all("not_read_at" in f for f in s["facts"] if f is not args_fact)  # the rest say what they lack
    f = s["classes"]["TorchLlmArgs"]["fields"]
    assert f["attn_backend"]["default"] == "TRTLLM" and f["disable_overlap_scheduler"]["default"] is False
    # quant_config is a property over a private attribute; build_config and enable_tqdm are TrtLlmArgs-only
    assert not {"quant_config", "build_config", "enable_tqdm"} & set(f)
    assert (
        f["enable_iter_perf_stats"] == {"type": "bool", "default": False}
        and f["max_stats_len"]["default"] == 1000
    )
    assert len(f) == 83
    assert set(s["classes"]["CudaGraphConfig"]["fields"]) == {
        "batch_sizes",
        "max_batch_size",
        "enable_padding",
    }
    assert s["classes"]["KvCacheConfig"]["fields"]["dtype"]["default"] == "auto"
    main = snapshot()
    serve = main["cli"]["trtllm-serve"]["options"]
    assert serve["--extra_llm_api_options"]["alias"] == "--config"
    assert serve["--tensor_parallel_size"]["alias"] == "--tp_size"
    assert serve["--free_gpu_memory_fraction"]["alias"] == "--kv_cache_free_gpu_memory_fraction"
    assert serve["--max_batch_size"]["default"] == 2048 and serve["--max_num_tokens"]["default"] == 8192
    lat = main["cli"]["trtllm-bench"]["subcommands"]["latency"]
    assert {"--modality", "--max_input_len", "--sampler_options", "--medusa_choices"} <= set(lat)
    assert "machine" not in main["report"]["blocks"]
    trt = main["classes"]["TrtLlmArgs"]["fields"]
    assert "decoding_config" in trt and trt["mpi_session"]["alias"] == "_mpi_session"
    assert any(f["path"] == "tensorrt_llm/commands/serve.py" for f in main["facts"])


# --------------------------------------------------------------- translation, whole knob space
def test_every_pytorch_translation_of_the_knob_space_conforms():
    snap = torch_snapshot()
    api = strict_api(snap)
    n = 0
    for k in torch_space():
        for load_format in ("auto", "dummy"):
            a = TT.llm_args(k, TrtllmOptions(tensor_parallel_size=2), "bfloat16", load_format)
            assert not check_kwargs("TorchLlmArgs", a, snap), (k, check_kwargs("TorchLlmArgs", a, snap))
        objs = TT.llm_kwargs(a, api)  # every object the runner constructs, on strict stand-ins
        assert objs["kv_cache_config"].dtype == k["kv_cache_dtype"]
        assert objs["kv_cache_config"].free_gpu_memory_fraction == k["kv_cache_fraction"]
        assert (objs["cuda_graph_config"] is None) == (not k["cuda_graphs"])
        assert objs["disable_overlap_scheduler"] is (not k["overlap_scheduler"])
        assert not check_kwargs("TorchLlmArgs", TT.serve_options(k, TORCH, "auto", "auto"), snap)
        assert not check_cli("throughput", TT.bench_throughput_flags(k, TORCH), snap), k
        assert not check_cli("", TT.serve_flags(k, TORCH), snap, tool="trtllm-serve"), k
        n += 1
    assert n == 5 * 2 * 2 * 5 * 2 * 2 * 2**5  # 5 loadable quantizations (int8_sq_per_channel is refused)
    with pytest.raises(TypeError, match="no argument"):
        api.CudaGraphConfig(padding=True)  # the stand-ins reject what 1.2.1 does not have


def test_defect_pytorch_trials_ask_for_iteration_stats_and_label_device_wide_memory():
    """The audit: without enable_iter_perf_stats the PyExecutor's get_stats() is empty, so the KV pool
    was never recorded; its gpuMemUsage is total - free of the device, not the executor's own."""
    from workbench.engines.trtllm.runner import TorchRunner, kv_stats
    from workbench.engines.trtllm_tensorrt.runner import TensorrtRunner

    snap = torch_snapshot()
    for k in torch_space():
        a = TT.llm_args(k, TORCH, "bfloat16", "auto")
        assert a["enable_iter_perf_stats"] is True
        assert TT.serve_options(k, TORCH, "auto", "auto")["enable_iter_perf_stats"] is True
        assert not check_kwargs("TorchLlmArgs", a, snap)
        break
    entry = '{"kvCacheStats": {"maxNumBlocks": 10, "tokensPerBlock": 32}, "gpuMemUsage": 7}'
    torch_side = kv_stats([entry], TorchRunner.GPU_MEM_KEY)
    assert torch_side == {"kv_cache_tokens": 320, "kv_cache_hit_rate": None, "device_gpu_mem_used_bytes": 7}
    assert kv_stats([entry], TensorrtRunner.GPU_MEM_KEY)["executor_gpu_mem_bytes"] == 7


def test_pytorch_backend_needs_a_build_only_for_a_quantized_choice_it_must_make():
    assert not B.needs_build(TORCH, {"quantization": "none"})
    assert B.needs_build(TORCH, {"quantization": "fp8"}) and B.needs_build(
        TORCH, {"quantization": "w4a16_awq"}
    )
    assert not B.needs_build(
        TrtllmOptions(checkpoints={"fp8": "nvidia/Llama-3.1-8B-Instruct-FP8"}), {"quantization": "fp8"}
    )
    assert TrtllmTensorrtEngine.needs_build_for(TRT, {"quantization": "none"})  # an engine is always built


# ----------------------------------------------------------------------------- feasibility
def ctx(**kw):
    return FeasibilityContext(**{"model_dtype": "bfloat16", "options": TORCH, **kw})


def test_pytorch_feasibility():
    r = TrtllmEngine.infeasible_reason
    assert "NVIDIA GPU" in r(knobs(), CPU, ctx())
    assert (
        "8.9" in r(knobs(quantization="fp8"), A100, ctx())
        and r(knobs(quantization="fp8"), H200, ctx()) is None
    )
    assert "8.9" in r(knobs(kv_cache_dtype="fp8"), A100, ctx())
    assert (
        "Blackwell" in r(knobs(quantization="nvfp4"), H200, ctx())
        and r(knobs(quantization="nvfp4"), B200, ctx()) is None
    )
    # one engine per backend: no "choice/knob of the other backend" checks, the vocabularies differ
    assert "kv_int8" not in TrtllmEngine.knobs["quantization"].choices
    assert "kv_int8" in TrtllmTensorrtEngine.knobs["quantization"].choices
    assert (
        "engine_max_batch_size" not in TrtllmEngine.knobs and "cuda_graphs" not in TrtllmTensorrtEngine.knobs
    )
    # the audit's first defect: W8A8 SmoothQuant does not load on the 1.2.1 PyTorch backend (refused
    # before ModelOpt builds anything); the TensorRT-backend engine keeps it
    assert "unsupported quant mode" in r(knobs(quantization="int8_sq_per_channel"), H200, ctx())
    assert (
        F.infeasible_reason(tknobs(quantization="int8_sq_per_channel"), H200, ctx(options=TRT), TRT) is None
    )
    assert "cuda_graph_max_batch_size=256" in r(
        knobs(max_batch_size=64, cuda_graph_max_batch_size=256), H200, ctx()
    )
    assert r(knobs(max_batch_size=64, cuda_graph_max_batch_size=256, cuda_graphs=False), H200, ctx()) is None
    c = ctx(model_config=LLAMA_8B, longest_prompt=1024, longest_output=256)
    est = FT.memory_estimate(knobs(), H200, c, TORCH)
    assert (
        est["max_batch_buffers_bytes"] >= 2048 * 128256 * 4
        and est["overhead_bytes"] >= 2 * FT.CUDA_CONTEXT_BYTES
    )
    assert FT.memory_estimate(knobs(kv_cache_dtype="fp8"), H200, c, TORCH)["kv_bytes_per_token"] == 65536
    small = DeviceInfo("cuda", "NVIDIA L4", 16 * 1024**3, (8, 9), 0)
    assert "estimated not to fit" in r(knobs(), small, c)


# ------------------------------------------------------------------------------ export, crosscheck
def torch_spec(tmp_path: Path, **options):
    (tmp_path / "calib").mkdir(exist_ok=True)
    (tmp_path / "calib" / "train.jsonl").write_text('{"text": "calibration"}\n')
    spec = validate_spec(
        {
            "name": "pt",
            "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16"},
            "engine": "trtllm",
            "engine_options": {"calib_dataset": str(tmp_path / "calib"), **options},
            "search_space": {"quantization": {"choices": ["none", "fp8", "w4a16_awq"]}},
            "workload": {
                "num_requests": 16,
                "warmup_requests": 2,
                "arrival": {"mode": "concurrency", "concurrency": 4},
            },
        }
    )
    return spec


def _commands_conform(sh: str, snap: dict) -> int:
    checked = 0
    for line in sh.replace("\\\n", " ").splitlines():
        words = line.lstrip("# ").split()
        if words[:1] == ["trtllm-serve"]:
            assert not check_cli("", words[2:], snap, tool="trtllm-serve"), line
            assert "--config" in words
            checked += 1
        if words[:1] == ["trtllm-bench"]:
            i = words.index("throughput")
            assert not check_cli("", words[1:i], snap) and not check_cli(
                "throughput", words[i + 1 :], snap
            ), line
            assert words[words.index("--backend") + 1] == "pytorch"
            checked += 1
    return checked


@pytest.mark.parametrize("q", ["none", "fp8", "w4a16_awq"])
def test_pytorch_export_writes_the_trials_arguments_as_trtllm_serve_config(tmp_path, q):
    spec = torch_spec(
        tmp_path, checkpoints={"w4a16_awq": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"}
    )
    k = knobs(
        quantization=q,
        kv_cache_dtype="fp8" if q == "fp8" else "auto",
        max_batch_size=256,
        chunked_prefill=True,
    )
    files = export(spec, 3, k, {"output_tok_s": 5000.0}, tmp_path / "out", {"output_tok_s": 4000.0}, "run1")
    names = {f.name for f in files}
    assert {"config.yaml", "commands.sh", "README.md", "trial.json"} <= names
    cfg = yaml.safe_load((tmp_path / "out/config.yaml").read_text())
    snap = torch_snapshot()
    assert not check_kwargs("TorchLlmArgs", cfg, snap) and cfg["max_batch_size"] == 256
    assert cfg["kv_cache_config"]["dtype"] == k["kv_cache_dtype"] and cfg["enable_chunked_prefill"] is True
    sh = (tmp_path / "out/commands.sh").read_text()
    assert _commands_conform(sh, snap) == 2
    assert ("quantize.json" in names) == (q == "fp8")  # the ModelOpt build; AWQ is the mapped checkpoint
    if q == "w4a16_awq":
        assert "MODEL=${MODEL:-hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4}" in sh
    if q == "fp8":
        import json

        req = json.loads((tmp_path / "out/quantize.json").read_text())
        assert (
            req["quantization"] == "fp8" and req["calibration"]["sha256"] and "location" in req["calibration"]
        )


def test_pytorch_crosscheck_runs_trtllm_bench_on_the_trials_checkpoint(tmp_path):
    spec = torch_spec(tmp_path)
    ckpt = tmp_path / "cache/abc/checkpoint"
    c = crosscheck.torch_commands(
        spec, spec.options(), knobs(quantization="fp8"), tmp_path, str(ckpt), eos_id=2
    )
    assert c.build is None and c.throughput[c.throughput.index("--model_path") + 1] == str(ckpt)
    i = c.throughput.index("throughput")
    snap = torch_snapshot()
    assert not check_cli("", c.throughput[1:i], snap) and not check_cli(
        "throughput", c.throughput[i + 1 :], snap
    )
    assert c.throughput[c.throughput.index("--extra_llm_api_options") + 1] == str(tmp_path / "config.yaml")


# --------------------------------------------------------------- defects of trtllm-tensorrt ----
def octx(tmp_path: Path, device=H200, **options) -> OpenContext:
    return OpenContext(
        model_source="meta-llama/Llama-3.1-8B-Instruct",
        device=device,
        model_dtype="bfloat16",
        options=TensorrtOptions(**options),
        study_dir=str(tmp_path),
        knobs=TRT_DEFAULTS,
    )


def test_defect_relative_calibration_path_is_resolved_against_the_study_file(tmp_path, monkeypatch):
    (tmp_path / "data" / "calib").mkdir(parents=True)
    (tmp_path / "data" / "calib" / "train.jsonl").write_text('{"text": "x"}\n')
    monkeypatch.chdir("/")
    req = TB.trt_request(octx(tmp_path, calib_dataset="data/calib"), tknobs(quantization="fp8_kv_fp8"))
    assert req["args"]["calib_config"]["calib_dataset"] == str((tmp_path / "data" / "calib").resolve())
    with pytest.raises(Exception, match="pileval, cnn_dailymail, scienceqa"):
        TB.trt_request(
            octx(tmp_path, calib_dataset="my-org/my-data", calib_allow_hub=True), tknobs(quantization="fp8")
        )


def test_defect_fp8_kv_without_an_fp8_algorithm_has_no_chunked_prefill_and_no_block_reuse():
    f = F.infeasible_reason
    assert "FP8 KV cache turns off paged context FMHA" in f(
        tknobs(quantization="kv_fp8", chunked_prefill=True), H200, ctx(options=TRT), TRT
    )
    assert f(tknobs(quantization="fp8_kv_fp8", chunked_prefill=True), H200, ctx(options=TRT), TRT) is None
    cfg = {
        "pretrained_config": {"quantization": {"quant_algo": None, "kv_cache_quant_algo": "FP8"}},
        "build_config": {"plugin_config": {"use_paged_context_fmha": True}},
    }
    r = resolved_config(cfg, T.runtime_args(tknobs()), {})
    assert (
        r["kv_cache_config.enable_block_reuse_requested"] is True
        and r["kv_cache_config.enable_block_reuse"] is False
    )
    cfg["pretrained_config"]["quantization"]["quant_algo"] = "FP8"
    assert resolved_config(cfg, T.runtime_args(tknobs()), {})["kv_cache_config.enable_block_reuse"] is True


def test_defect_use_fp8_context_fmha_is_not_in_the_build_key(tmp_path):
    a = TB.material(octx(tmp_path), tknobs(use_fp8_context_fmha=True))
    assert a == TB.material(octx(tmp_path), tknobs(use_fp8_context_fmha=False))
    assert (
        "use_fp8_context_fmha"
        not in T.build_args(tknobs(), TRT, "bfloat16", "auto")["build_config"]["plugin_config"]
    )


def test_defect_cuda_graph_mode_caches_graphs_like_trtllm_bench():
    r = T.runtime_args(tknobs(cuda_graph_mode=True))
    assert r["extended_runtime_perf_knob_config"]["cuda_graph_cache_size"] == 1000
    assert not check_kwargs("TrtLlmArgs", r)
    assert "cuda_graph_cache_size" not in T.runtime_args(tknobs())["extended_runtime_perf_knob_config"]


def test_defect_blackwell_rejects_int8_kv_and_per_channel_fp8():
    for q in ("kv_int8", "fp8_per_channel_per_token"):
        assert "SM 100-119" in F.infeasible_reason(tknobs(quantization=q), B200, ctx(options=TRT), TRT), q
        assert F.infeasible_reason(tknobs(quantization=q), H200, ctx(options=TRT), TRT) is None


def test_defect_memory_estimate_counts_max_batch_buffers_and_two_contexts():
    c = ctx(options=TRT, model_config=LLAMA_8B)
    est = F.memory_estimate(tknobs(), H200, c, TRT)
    assert est["max_batch_buffers_bytes"] == 2048 * 128256 * 4  # fp32 logits of the engine's max batch
    assert est["overhead_bytes"] == 1.5 * 1024**3 + F.CUDA_CONTEXT_BYTES
    # a card that the old estimate (weights + activations + 1.5 GiB) called a fit
    old_need = est["weights_bytes"] + est["activation_bytes"] + 1.5 * 1024**3
    card = DeviceInfo("cuda", "card", int(old_need + 0.5 * 1024**3), (9, 0), 0)
    assert "estimated not to fit" in F.infeasible_reason(tknobs(), card, c, TRT)


def test_defect_the_build_key_holds_the_gpu_model_and_the_calibration_content(tmp_path):
    (tmp_path / "calib").mkdir()
    data = tmp_path / "calib" / "train.jsonl"
    data.write_text('{"text": "a"}\n')
    k = tknobs(quantization="fp8_kv_fp8")
    h200 = TB.material(octx(tmp_path, H200, calib_dataset="calib"), k)
    assert h200 != TB.material(octx(tmp_path, H100, calib_dataset="calib"), k)  # both sm_90
    data.write_text('{"text": "b"}\n')
    assert h200 != TB.material(octx(tmp_path, H200, calib_dataset="calib"), k)
    assert (
        "calib_dataset" not in h200["args"].get("calib_config", {})
        or h200["args"]["calib_config"]["calib_dataset"] is None
    )
    assert {"tensorrt", "tensorrt_llm"} <= set(TrtllmTensorrtEngine.packages)
    assert {"nvidia-modelopt", "tensorrt_llm"} <= set(TrtllmEngine.packages)


def test_defect_a_separate_build_process_keeps_the_serving_peak_apart():
    from workbench.trials.result import TrialResult
    from workbench.trials.worker.measure import GB, apply_memory

    res = TrialResult.model_construct(
        status="COMPLETE", metrics={}, bench={}, build={"build_process": "separate"}
    )
    gib = 1024**3
    mem = {
        "peak_above_baseline_bytes": 90 * gib,
        "phase_peak_above_baseline_bytes": {
            "start": 0,
            "build": 90 * gib,
            "load": 20 * gib,
            "benchmark": 60 * gib,
        },
    }
    apply_memory(res, mem)
    assert res.metrics["peak_memory_gb"] == pytest.approx(60 * gib / GB)
    assert res.metrics["build_peak_memory_gb"] == pytest.approx(90 * gib / GB)


def test_defect_the_crosscheck_replays_the_trials_measured_requests(write_study, tmp_path):
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from workbench.cli.inspect import _crosscheck_input
    from workbench.spec import load_spec
    from workbench.trials.workload import make_requests

    spec = load_spec(write_study())
    w = spec.workload
    tok = AutoTokenizer.from_pretrained(spec.model_source)
    t = SimpleNamespace(number=0, params={}, user_attrs={"knobs": {}, "metrics": {}})
    inp = _crosscheck_input(spec, t, tmp_path, False)
    common = {"vocab_size": len(tok), "tokenizer": tok, "special_ids": set(tok.all_special_ids)}
    bench_run0 = make_requests(
        w, w.num_requests, seed=w.seed + 0, prefix="run0", **common
    )  # bench.py, repeat 0
    assert [r.input_ids for r in inp.requests] == [r.input_ids for r in bench_run0]
    assert [r.max_new_tokens for r in inp.requests] == [r.max_new_tokens for r in bench_run0]


@pytest.mark.parametrize(
    "name, engine", [("trtllm-llama-3.1-8b", "trtllm"), ("trtllm-llama-3.1-8b-tensorrt", "trtllm-tensorrt")]
)
def test_the_worked_examples_validate_on_a_fresh_clone(tmp_path, name, engine):
    """The audit: both worked studies failed validation on a fresh clone (a calibration folder nobody had);
    they calibrate on TensorRT-LLM's documented default (cnn_dailymail from the hub), and a local folder
    that is missing is still a validation error."""
    import shutil

    from workbench.spec import SpecError, load_spec

    root = Path(__file__).resolve().parent.parent
    spec = load_spec(root / "studies" / f"{name}.yaml")  # as cloned: nothing made first
    assert spec.engine_options["calib_allow_hub"] is True and "calib_dataset" not in spec.engine_options
    assert B.calib.resolve(spec.options(), str(root / "studies")).location == "cnn_dailymail"
    (tmp_path / "studies").mkdir()
    study = tmp_path / "studies" / f"{name}.yaml"
    text = (root / "studies" / f"{name}.yaml").read_text()
    study.write_text(text.replace("  calib_allow_hub: true", "  calib_dataset: ../data/calib", 1))
    with pytest.raises(SpecError, match="calib_dataset"):  # a local folder that is not there
        load_spec(study)
    shutil.copy(root / "studies" / f"{name}.yaml", study)
    assert load_spec(study).engine_options == spec.engine_options  # nothing relative to the clone
    assert spec.engine == engine and "backend" not in spec.engine_options
    assert {"max_batch_size", "max_num_tokens", "kv_cache_fraction", "quantization"} <= set(spec.search_space)
    assert any(c.metric == "gsm8k_score" for c in spec.constraints)
    if engine == "trtllm":
        assert set(spec.search_space["quantization"].choices) == {"none", "fp8", "w4a16_awq"}
        assert "kv_cache_dtype" in spec.search_space and "cuda_graph_padding" in spec.search_space


def test_defect_the_recorder_reads_trtllm_serve_options_from_its_serve_subcommand():
    """The audit: `commands.serve.main` is a group with no options; they live on main.commands["serve"]."""
    import importlib.util

    import click

    spec = importlib.util.spec_from_file_location(
        "record_trtllm_api", Path(__file__).resolve().parent.parent / "scripts" / "record_trtllm_api.py"
    )
    rec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rec)

    @click.group()
    def main() -> None: ...

    @main.command("serve")
    @click.argument("model")
    @click.option("--config", "--extra_llm_api_options", type=str, default=None)
    @click.option("--max_batch_size", type=int, default=2048)
    def serve(model: str, config: str | None, max_batch_size: int) -> None: ...

    assert rec.record_click(main) == {}  # what the recorder wrote before: an empty option set
    got = rec.record_click(rec.serve_command(main))
    assert set(got) == {"--config", "--extra_llm_api_options", "--max_batch_size"}
    assert got["--max_batch_size"] == {"type": "int", "default": 2048}
    assert rec.serve_command(serve) is serve  # a plain command is its own holder


#: the audit's missing knobs, each at its bounds or choices (null is every trial's default)
NEW_KNOB_VALUES = {
    "stream_interval": [1, 64],
    "batch_wait_timeout_iters": [0, 20],
    "batch_wait_max_tokens_ratio": [0.0, 0.5, 1.0],
    "host_cache_size": [0, 64 * 1024**3],
    "enable_partial_reuse": [False, True],
    "kv_cache_max_tokens": [1, 1_000_000],
    "torch_compile": ["fullgraph", "piecewise_cuda_graph"],
}


def test_the_knobs_users_tune_translate_to_recorded_1_2_1_fields():
    """stream_interval, batch waiting, KV offload / partial reuse / max tokens and torch.compile: null
    passes nothing (TensorRT-LLM's default), a value lands in its 1.2.1 field, on strict stand-ins."""
    snap = torch_snapshot()
    api = strict_api(snap)
    base = TT.llm_args(DEFAULTS, TORCH, "bfloat16", "auto")
    assert not {"stream_interval", "batch_wait_timeout_iters", "batch_wait_max_tokens_ratio"} & set(base)
    assert "torch_compile_config" not in base
    assert not {"host_cache_size", "enable_partial_reuse", "max_tokens"} & set(base["kv_cache_config"])
    sample = list(itertools.islice(torch_space(), 0, None, 997))  # a spread of the full space
    checked = 0
    for name, values in NEW_KNOB_VALUES.items():
        for value in values:
            assert TrtllmEngine.knobs[name].check(value) == value
            for k in sample:
                a = TT.llm_args({**k, name: value}, TORCH, "bfloat16", "auto")
                assert not check_kwargs("TorchLlmArgs", a, snap), (name, value)
                objs = TT.llm_kwargs(a, api)
                assert not check_kwargs(
                    "TorchLlmArgs", TT.serve_options({**k, name: value}, TORCH, "auto", "auto"), snap
                )
                checked += 1
            kv = a["kv_cache_config"]
            if name in TT.OPTIONAL_KV:
                assert (
                    kv[TT.OPTIONAL_KV[name]] == value
                    and getattr(objs["kv_cache_config"], TT.OPTIONAL_KV[name]) == value
                )
            elif name == "torch_compile":
                cfg = objs["torch_compile_config"]
                assert cfg.enable_piecewise_cuda_graph is (value == "piecewise_cuda_graph")
            else:
                assert a[name] == value
    assert checked == sum(len(v) for v in NEW_KNOB_VALUES.values()) * len(sample) > 100
    bad_values = [
        ("stream_interval", 0),
        ("batch_wait_max_tokens_ratio", 1.5),
        ("host_cache_size", -1),
        ("batch_wait_timeout_iters", -1),
        ("torch_compile", "max-autotune"),
    ]
    for name, bad in bad_values:
        with pytest.raises(ValueError, match=name):
            TrtllmEngine.knobs[name].check(bad)
    with pytest.raises(TypeError, match="no argument"):
        api.TorchCompileConfig(piecewise=True)  # the stand-in refuses what 1.2.1 lacks


@pytest.mark.parametrize("engine", ["trtllm", "trtllm-serve"])
def test_a_backend_switch_is_rejected_with_the_line_to_write(write_study, engine):
    """Issue #20 item 2: the legacy TensorRT backend is its own engine; a study written for the old
    `engine_options.backend` gets one clear message at validation, not a trial that runs another thing."""
    from workbench.spec import SpecError, load_spec

    p = write_study(engine=engine, engine_options={"backend": "tensorrt"}, search_space={"max_batch_size": 8})
    with pytest.raises(SpecError, match=r"engine_options.*engine: trtllm-tensorrt"):
        load_spec(p)
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "validate", str(p)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "trtllm-tensorrt" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------ speculative decoding
@pytest.mark.parametrize(
    "mode, extra, cls",
    [
        ("mtp", {"max_draft_len": 3}, "MTPDecodingConfig"),
        ("eagle3", {"max_draft_len": 4}, "EagleDecodingConfig"),
        ("ngram", {"max_draft_len": 4, "max_matching_ngram_size": 3}, "NGramDecodingConfig"),
        ("draft_target", {"max_draft_len": 2}, "DraftTargetDecodingConfig"),
    ],
)
def test_speculative_decoding_translates_to_recorded_1_2_1_configs(mode, extra, cls):
    """The issue's missing knobs: speculative decoding as TorchLlmArgs.speculative_config, its class and
    YAML dict (decoding_type) checked against the classes recorded from 1.2.1's llm_args.py."""
    snap = torch_snapshot()
    opts = TrtllmOptions(speculative_model="/models/draft" if mode in ("eagle3", "draft_target") else None)
    k = knobs(speculative_decoding=mode, **extra)
    a = TT.llm_args(k, opts, "bfloat16", "auto")
    spec = a["speculative_config"]
    assert spec["decoding_type"] == snap["classes"][cls]["decoding_type"]
    fields = {f: v for f, v in spec.items() if f != "decoding_type"}
    assert not check_kwargs(cls, fields, snap), check_kwargs(cls, fields, snap)
    obj = TT.llm_kwargs(a, strict_api(snap))["speculative_config"]
    assert type(obj).__name__ == cls
    if mode == "mtp":
        assert obj.num_nextn_predict_layers == 3 and "max_draft_len" not in spec
    else:
        assert obj.max_draft_len == extra["max_draft_len"]
    assert (obj.speculative_model == "/models/draft") == (mode in ("eagle3", "draft_target"))
    assert TT.serve_options(k, opts, "auto", "auto")["speculative_config"] == spec  # the --config YAML
    assert FT.infeasible_reason(k, H200, ctx(options=opts), opts) is None
    assert "speculative_config" not in TT.llm_args(knobs(), TORCH, "bfloat16", "auto")  # none: nothing passed


def test_speculative_decoding_feasibility_says_what_1_2_1_requires():
    r = TrtllmEngine.infeasible_reason
    assert "draft model" in r(knobs(speculative_decoding="eagle3", max_draft_len=4), H200, ctx())
    assert "needs max_draft_len" in r(
        knobs(speculative_decoding="ngram", max_matching_ngram_size=2), H200, ctx()
    )
    assert "max_matching_ngram_size" in r(knobs(speculative_decoding="ngram", max_draft_len=2), H200, ctx())
    assert "changes nothing" in r(knobs(max_draft_len=4), H200, ctx())
    assert "ngram knob" in r(knobs(speculative_decoding="mtp", max_matching_ngram_size=2), H200, ctx())
    # MTP drafts with the checkpoint's own layers: Llama has none, DeepSeek-V3's config declares them
    assert "MTP layers" in r(knobs(speculative_decoding="mtp"), H200, ctx(model_config=LLAMA_8B))
    deepseek = {**LLAMA_8B, "num_nextn_predict_layers": 1}
    assert FT._speculative(knobs(speculative_decoding="mtp"), ctx(model_config=deepseek), TORCH) is None


def test_speculative_acceptance_is_read_from_the_iteration_stats():
    from workbench.engines.trtllm.runner import kv_stats

    entries = [
        {"specDecodingStats": {"numDraftTokens": 40, "numAcceptedTokens": 30}},
        '{"specDecodingStats": {"numDraftTokens": 60, "numAcceptedTokens": 20}}',
        {"kvCacheStats": {"maxNumBlocks": 2, "tokensPerBlock": 32}},
    ]
    got = kv_stats(entries, "device_gpu_mem_used_bytes")
    assert got["spec_decoding.draft_tokens"] == 100 and got["spec_decoding.acceptance_rate"] == 0.5
    assert "spec_decoding.acceptance_rate" not in kv_stats(entries[2:], "x")


def test_a_relative_draft_model_path_is_a_validation_error(write_study):
    from workbench.spec import SpecError, load_spec

    p = write_study(
        engine="trtllm", engine_options={"speculative_model": "./draft"}, search_space={"max_batch_size": 8}
    )
    with pytest.raises(SpecError, match="speculative_model: a hub id or an absolute path"):
        load_spec(p)


def test_the_crosscheck_comparison_is_typed_with_one_ratio_direction():
    """Issue #20 item 7: trtllm-bench's comparison computed ours / theirs while AIPerf's and the MLflow
    names (`<tool>_ratio.*`) said tool's / ours; one typed comparison now holds every tool's numbers."""
    from types import SimpleNamespace

    from workbench.engines.trtllm.crosscheck import Commands
    from workbench.engines.trtllm.crosscheck import compare as trtllm_compare
    from workbench.format import format_comparison

    inp = SimpleNamespace(spec=SimpleNamespace(name="s"), trial_number=3, metrics={"output_tok_s": 100.0})
    cmds = Commands(None, ["trtllm-bench", "throughput"], Path("/ckpt"), "trial checkpoint")
    c = trtllm_compare(inp, cmds, {"output_tok_s": 110.0, "ttft_ms_p50": 20.0}, {"throughput_s": 9.0})
    assert c.metrics["output_tok_s"].ratio == pytest.approx(1.1)  # the tool's / ours, as MLflow names it
    assert c.metrics["ttft_ms_p50"].ratio is None and c.their_metrics == {
        "output_tok_s": 110.0,
        "ttft_ms_p50": 20.0,
    }
    j = c.to_json()
    assert j["metrics"]["output_tok_s"] == {
        "workbench": 100.0,
        "trtllm_bench": 110.0,
        "ratio": pytest.approx(1.1),
    }
    assert (j["tool"], j["trial"], j["engine_source"]) == ("trtllm-bench", 3, "trial checkpoint")
    text = format_comparison(c)
    assert "trtllm-bench" in text and "1.10" in text


def test_cuda_graph_batch_sizes_translate_to_the_recorded_cuda_graph_config():
    """The audit's missing knob: explicit CudaGraphConfig.batch_sizes (Optional[List[int]] at 1.2.1)."""
    from workbench.engines.trtllm.knobs import graph_batch_sizes

    assert graph_batch_sizes("auto", 128) is None
    assert graph_batch_sizes("powers_of_two", 128) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert graph_batch_sizes("powers_of_two", 48) == [1, 2, 4, 8, 16, 32, 48]
    assert graph_batch_sizes("dense", 20) == [1, 2, 4, 8, 16, 20]
    assert graph_batch_sizes("all", 4) == [1, 2, 3, 4]
    snap, api = torch_snapshot(), strict_api(torch_snapshot())
    for choice in ("auto", "powers_of_two", "dense", "all"):
        k = knobs(cuda_graph_batch_sizes=choice, cuda_graph_max_batch_size=64)
        cfg = TT.llm_args(k, TORCH, "bfloat16", "auto")["cuda_graph_config"]
        assert not check_kwargs("CudaGraphConfig", cfg, snap), cfg
        obj = TT.llm_kwargs({"cuda_graph_config": cfg}, api)["cuda_graph_config"]
        assert obj.max_batch_size == 64
        assert ("batch_sizes" in cfg) == (choice != "auto") and (
            choice == "auto" or cfg["batch_sizes"][-1] == 64
        )
    assert (
        TT.llm_args(knobs(cuda_graphs=False, cuda_graph_batch_sizes="all"), TORCH, "bfloat16", "auto")[
            "cuda_graph_config"
        ]
        is None
    )
