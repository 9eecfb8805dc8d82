"""The trtllm-tensorrt engine (the legacy TensorRT backend) against the recorded TensorRT-LLM 1.2.x API.

Every argument the engine passes, every exported YAML key, every trtllm-bench flag and every report
key parsed is checked against workbench/engines/trtllm/api/tensorrt_llm-1.2.1.json, across the whole
search space; object construction runs on stand-ins generated from that snapshot, which reject any
name, type or enum member 1.2.x does not have.
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workbench.engines.base import DeviceInfo, FeasibilityContext
from workbench.engines.trtllm import args as TA
from workbench.engines.trtllm import available, kv_stats, load_api
from workbench.engines.trtllm import crosscheck as shared_crosscheck
from workbench.engines.trtllm.api import (
    check_cli,
    check_kwargs,
    conforms,
    report_paths,
    snapshot,
    strict_api,
)
from workbench.engines.trtllm_tensorrt import TrtllmTensorrtEngine, crosscheck, resolved_config
from workbench.engines.trtllm_tensorrt import args as T
from workbench.engines.trtllm_tensorrt import feasibility as F
from workbench.engines.trtllm_tensorrt import knobs as K
from workbench.export import export
from workbench.spec import validate_spec

ROOT = Path(__file__).resolve().parent.parent
H200 = DeviceInfo("cuda", "NVIDIA H200", 143_771_000_000, (9, 0), 0)
A100 = DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", 85_899_345_920, (8, 0), 0)
L4 = DeviceInfo("cuda", "NVIDIA L4", 24_152_899_584, (8, 9), 0)
B200 = DeviceInfo("cuda", "NVIDIA B200", 191_000_000_000, (10, 0), 0)
T4_16G = DeviceInfo("cuda", "Tesla T4", 16_106_127_360, (7, 5), 0)
CPU = DeviceInfo("cpu", "cpu", 24 * 1024**3)
# meta-llama/Llama-3.1-8B-Instruct config.json (public), the fields the estimate reads
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
DEFAULTS = TrtllmTensorrtEngine.default_knobs()

TRT = K.TensorrtOptions()  # engine_options of a trtllm-tensorrt study at its defaults


def knobs(**kw):
    return {**DEFAULTS, **kw}


def search_space():
    """Every combination of the categorical and boolean knobs, numeric knobs cycling through their bounds."""
    cats = {k.name: list(k.choices) for k in K.KNOBS if k.type == "categorical"}
    bools = [k.name for k in K.KNOBS if k.type == "bool"]
    numeric = [
        {
            "max_batch_size": 1,
            "max_num_tokens": 1,
            "kv_cache_fraction": 0.01,
            "engine_max_batch_size": 1,
            "engine_max_num_tokens": 1,
            "max_input_len": 1,
            "max_seq_len": 2,
        },
        DEFAULTS,
        {
            "max_batch_size": 4096,
            "max_num_tokens": 65536,
            "kv_cache_fraction": 0.99,
            "engine_max_batch_size": 4096,
            "engine_max_num_tokens": 65536,
            "max_input_len": 131072,
            "max_seq_len": 131072,
        },
    ]
    names = list(cats) + bools
    for i, values in enumerate(itertools.product(*cats.values(), *[[False, True]] * len(bools))):
        num = {k: v for k, v in numeric[i % 3].items() if k in K.KNOBS_BY_NAME}
        yield {**DEFAULTS, **num, **dict(zip(names, values, strict=True))}


# ------------------------------------------------------------------------------------ the snapshot
def test_snapshot_records_its_sources_and_the_classes_used():
    s = snapshot()
    assert s["tensorrt_llm_version"].startswith("1.2.")
    assert set(s["sources"]) >= {"classes", "cli", "report_keys"}
    for cls in (
        "BuildConfig",
        "PluginConfig",
        "QuantConfig",
        "CalibConfig",
        "KvCacheConfig",
        "SchedulerConfig",
        "TrtLlmArgs",
        "SamplingParams",
        "ExtendedRuntimePerfKnobConfig",
    ):
        assert s["classes"][cls]["fields"], cls
    assert len(s["enums"]["QuantAlgo"]) == 25 and "NVFP4" in s["enums"]["QuantAlgo"]
    assert s["imports"]["LLM"] == "tensorrt_llm._tensorrt_engine"
    assert s["classes"]["BuildConfig"]["fields"]["max_input_len"]["default"] == 1024
    assert s["classes"]["SamplingParams"]["fields"]["max_tokens"]["default"] == 32


def test_type_checks_can_fail():
    assert (
        conforms("Optional[int]", None)
        and conforms("Optional[int]", 3)
        and not conforms("Optional[int]", "3")
    )
    assert not conforms("int", True) and conforms("float", 1) and not conforms("bool", 1)
    assert conforms("enum:QuantAlgo", "FP8") and not conforms("enum:QuantAlgo", "FP16")
    assert conforms("Literal[auto,dummy]", "dummy") and not conforms("Literal[auto,dummy]", "random")
    assert check_kwargs("KvCacheConfig", {"free_gpu_memory_fraction": 0.9}) == []
    assert check_kwargs("KvCacheConfig", {"quant_algo": "FP8"})  # removed before 1.2: an error now
    assert check_kwargs("KvCacheConfig", {"enable_block_reuse": "yes"})
    assert check_kwargs("TrtLlmArgs", {"kv_cache_config": {"free_gpu_memory_fraction": "0.9"}})
    assert check_cli("throughput", ["--engine_dir", "e", "--not_a_flag", "1"])
    assert check_cli("throughput", ["--scheduler_policy", "fifo"])
    assert check_cli(
        "build", ["--quantization", "W8A8_SQ_PER_CHANNEL"]
    )  # trtllm-bench build has no SmoothQuant


def test_strict_stand_ins_reject_what_1_2_does_not_have():
    api = strict_api()
    with pytest.raises(TypeError, match="no argument"):
        api.BuildConfig(max_batch=8)
    with pytest.raises(TypeError, match="keyword"):
        api.SamplingParams(256)
    bc = api.BuildConfig(max_batch_size=8)
    with pytest.raises(TypeError):
        bc.plugin_config.gemm_plugin = "int4"  # not an allowed gemm_plugin value
    with pytest.raises(KeyError):
        api.QuantAlgo["FP16"]


# --------------------------------------------------------------------- translation, whole space
def test_every_translation_of_the_search_space_conforms():
    api = strict_api()
    n = 0
    for k in search_space():
        for load_format in ("auto", "dummy"):
            b = T.build_args(
                k,
                K.TensorrtOptions(calib_dataset="/data/calib", tensor_parallel_size=2),
                "bfloat16",
                load_format,
            )
            problems = check_kwargs("TrtLlmArgs", b)
            assert not problems, (k, problems)
        r = T.runtime_args(k)
        assert not check_kwargs("TrtLlmArgs", r), k
        ex = T.extra_llm_api_options(k, TRT, "auto", "auto")
        assert not check_kwargs("TrtLlmArgs", ex), k
        objs = T.llm_kwargs({**b, **r}, api)  # every object the engine constructs, on strict stand-ins
        assert objs["build_config"].plugin_config.tokens_per_block == k["tokens_per_block"]
        assert objs["kv_cache_config"].free_gpu_memory_fraction == k["kv_cache_fraction"]
        assert not check_cli("throughput", T.bench_throughput_flags(k, TRT)), k
        if T.bench_build_unsupported(k) is None:
            assert not check_cli("build", T.bench_build_flags(k, TRT, "dummy")), k
        n += 1
    assert n == 19 * 5 * 3 * 2 * 2 * 2**6  # quantization x tokens_per_block x gemm x policies x bools


def test_quantization_names_map_to_quant_algo_members_and_calibration():
    members = set(snapshot()["enums"]["QuantAlgo"])
    kv = set(snapshot()["enums"]["KV_CACHE_QUANT_ALGO_LIST"])
    for name, q in K.QUANTIZATIONS.items():
        assert q.quant_algo is None or q.quant_algo in members, name
        assert q.kv_cache_quant_algo is None or q.kv_cache_quant_algo in kv, name
    b = T.build_args(
        knobs(quantization="fp8_kv_fp8"), K.TensorrtOptions(calib_dataset="/c"), "bfloat16", "auto"
    )
    assert b["quant_config"] == {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}
    assert b["calib_config"]["calib_dataset"] == "/c"
    assert "calib_config" not in T.build_args(knobs(quantization="w4a16"), TRT, "bfloat16", "auto")
    assert "calib_config" in T.build_args(knobs(quantization="w4a16_awq"), TRT, "bfloat16", "auto")
    assert "calib_config" in T.build_args(knobs(quantization="kv_int8"), TRT, "bfloat16", "auto")
    # the tuning guide: gemm plugin for bf16, not for FP8
    assert (
        T.build_args(knobs(), TRT, "bfloat16", "auto")["build_config"]["plugin_config"]["gemm_plugin"]
        == "auto"
    )
    assert (
        T.build_args(knobs(quantization="fp8"), TRT, "bfloat16", "auto")["build_config"]["plugin_config"][
            "gemm_plugin"
        ]
        is None
    )


def test_runtime_knobs_never_change_the_build_key(tmp_path):
    from workbench.trials.cache import build_key
    from workbench.trials.orchestrator.planning import make_plan

    spec = validate_spec(
        {
            "name": "k",
            "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16"},
            "engine": "trtllm-tensorrt",
            "search_space": {"max_batch_size": {"choices": [8, 16]}},
        }
    )

    def key(**kw):
        from workbench.knobs import split_knobs

        plan = make_plan(spec, "t", knobs(**kw), H200, tmp_path, tmp_path)
        build, _ = split_knobs(TrtllmTensorrtEngine.knobs, plan.knobs)
        return build_key(TrtllmTensorrtEngine(plan.open_context()).build_material(build))

    base = key()
    assert base == key(
        max_batch_size=8,
        max_num_tokens=512,
        kv_cache_fraction=0.5,
        chunked_prefill=True,
        enable_block_reuse=False,
        scheduler_policy="max_utilization",
        cuda_graph_mode=True,
    )
    assert base != key(quantization="fp8") != key(engine_max_batch_size=256)
    assert base != key(tokens_per_block=64) and base != key(max_input_len=2048)


# ---------------------------------------------------------------------------------- feasibility
def ctx(**kw):
    return FeasibilityContext(**{"model_dtype": "bfloat16", **kw})


def test_architecture_and_device_feasibility_is_decided_before_building():
    assert "NVIDIA GPU" in F.infeasible_reason(knobs(), CPU, ctx(), TRT)
    r = F.infeasible_reason(knobs(quantization="fp8"), A100, ctx(), TRT)
    assert "8.9" in r and "A100" in r
    assert F.infeasible_reason(knobs(quantization="fp8"), L4, ctx(), TRT) is None
    assert F.infeasible_reason(knobs(quantization="fp8_kv_fp8"), H200, ctx(), TRT) is None
    assert "Blackwell" in F.infeasible_reason(knobs(quantization="nvfp4"), H200, ctx(), TRT)
    assert F.infeasible_reason(knobs(quantization="nvfp4"), B200, ctx(), TRT) is None
    assert "SM>=100" in F.infeasible_reason(knobs(quantization="w4a16_awq"), B200, ctx(), TRT)
    assert "bfloat16" in F.infeasible_reason(knobs(), T4_16G, ctx(), TRT)
    assert "chunked_prefill" in F.infeasible_reason(
        knobs(quantization="kv_int8", chunked_prefill=True), H200, ctx(), TRT
    )


def test_bounds_and_request_lengths():
    r = F.infeasible_reason(knobs(max_batch_size=512, engine_max_batch_size=256), H200, ctx(), TRT)
    assert "engine_max_batch_size=256" in r
    r = F.infeasible_reason(knobs(), H200, ctx(longest_prompt=5000, longest_output=100), TRT)
    assert "max_input_len=4096" in r
    r = F.infeasible_reason(
        knobs(max_num_tokens=1024), H200, ctx(longest_prompt=2000, longest_output=100), TRT
    )
    assert "chunked_prefill off" in r
    assert (
        F.infeasible_reason(
            knobs(max_num_tokens=1024, chunked_prefill=True),
            H200,
            ctx(longest_prompt=2000, longest_output=100),
            TRT,
        )
        is None
    )
    r = F.infeasible_reason(
        knobs(max_seq_len=4096), H200, ctx(accuracy_input_len=4096, accuracy_gen_len=256), TRT
    )
    assert "GSM8K" in r and "max_seq_len=4096" in r


def test_memory_estimate_prunes_builds_that_cannot_fit():
    c = ctx(model_config=LLAMA_8B, longest_prompt=1024, longest_output=256)
    est = F.memory_estimate(knobs(), H200, c, TRT)
    assert 14.5 < est["weights_bytes"] / 1024**3 < 15.5  # 8.03 B parameters in bf16 = 14.96 GiB
    fp8 = F.memory_estimate(knobs(quantization="fp8"), H200, c, TRT)
    awq = F.memory_estimate(knobs(quantization="w4a16_awq"), H200, c, TRT)
    assert awq["weights_bytes"] < fp8["weights_bytes"] < est["weights_bytes"]
    assert est["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2  # 128 KiB per token in bf16
    assert F.memory_estimate(knobs(quantization="fp8_kv_fp8"), H200, c, TRT)["kv_bytes_per_token"] == 65536
    l4 = DeviceInfo("cuda", "NVIDIA L4", 16 * 1024**3, (8, 9), 0)  # a 16 GiB card
    r = F.infeasible_reason(knobs(), l4, c, TRT)
    assert r is not None and "estimated not to fit" in r and "16.0 GiB" in r
    assert (
        F.infeasible_reason(
            knobs(quantization="w4a16_awq", engine_max_num_tokens=2048, max_num_tokens=2048), l4, c, TRT
        )
        is None
    )
    tiny = F.infeasible_reason(knobs(quantization="w4a16_awq", kv_cache_fraction=0.001), l4, c, TRT)
    assert "KV pool" in tiny
    assert F.infeasible_reason(knobs(), H200, c, TRT) is None


def test_engine_infeasible_reason_uses_the_study_context(write_study):
    from workbench.spec import load_spec
    from workbench.trials.orchestrator.run import feasibility_context

    p = write_study(
        engine="trtllm-tensorrt",
        search_space={"max_batch_size": {"choices": [8]}},
        **{"model.dtype": "bfloat16"},
    )
    spec = load_spec(p)
    c = feasibility_context(spec)
    assert c.longest_prompt == 40 and c.longest_output == 8 and c.model_config["num_hidden_layers"] >= 1
    assert TrtllmTensorrtEngine.infeasible_reason(knobs(max_input_len=16), H200, c).startswith(
        "the workload's longest request has a 40-token prompt"
    )


# ------------------------------------------------------------------------------------ generation
def test_sampling_params_for_benchmarks_and_gsm8k():
    api = strict_api()
    bench = TA.sampling_args(128, ignore_eos=True, detokenize=False)
    assert bench == {"max_tokens": 128, "ignore_eos": True, "detokenize": False}
    gsm = TA.sampling_args(256, ignore_eos=False, stop=["Question:", "</s>", "<|im_end|>"])
    assert (
        gsm["max_tokens"] == 256 and gsm["stop"] == ["Question:", "</s>", "<|im_end|>"] and gsm["detokenize"]
    )
    for args in (bench, gsm):
        assert not check_kwargs("SamplingParams", args)
        sp = api.SamplingParams(**args)
        assert sp.temperature is None and sp.top_k is None and sp.top_p is None  # greedy
        assert sp.include_stop_str_in_output is False


def test_kv_stats_and_resolved_config_from_recorded_shapes():
    stats = [
        {
            "iter": 1,
            "gpuMemUsage": 123,
            "kvCacheStats": {"maxNumBlocks": 100, "tokensPerBlock": 32, "cacheHitRate": 0.5},
        },
        json.dumps({"iter": 2, "kvCacheStats": {"maxNumBlocks": 200, "tokensPerBlock": 64}}),
    ]
    s = kv_stats(stats)
    assert s["kv_cache_tokens"] == 200 * 64 and s["executor_gpu_mem_bytes"] == 123
    for k in ("maxNumBlocks", "tokensPerBlock", "cacheHitRate"):
        assert k in snapshot()["llm"]["stats_keys"]["kvCacheStats"]
    cfg = {
        "version": "1.2.1",
        "pretrained_config": {
            **LLAMA_8B,
            "dtype": "bfloat16",
            "architecture": "LlamaForCausalLM",
            "head_size": 128,
            "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"},
        },
        "build_config": {
            "max_batch_size": 1024,
            "max_num_tokens": 16384,
            "max_input_len": 4096,
            "max_seq_len": 4352,
            "plugin_config": {"tokens_per_block": 32, "multiple_profiles": True},
        },
    }
    assert set(cfg) == set(snapshot()["llm"]["engine_config_keys"])
    r = resolved_config(cfg, T.runtime_args(knobs(max_batch_size=256)), {"engine_size_bytes": 9_000_000_000})
    assert r["kv_bytes_per_token"] == 65536 and r["build_max_batch_size"] == 1024
    assert r["runtime_max_batch_size"] == 256 and r["quant_algo"] == "FP8" and r["weights_bytes"] == 9e9


# ------------------------------------------------------------------------------ export, crosscheck
def trt_spec(tmp_path: Path, **kw):
    (tmp_path / "calib").mkdir(exist_ok=True)  # validation checks the calibration folder exists
    (tmp_path / "calib" / "train.jsonl").write_text('{"text": "calibration text"}\n')
    data = {
        "name": "trt",
        "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16"},
        "engine": "trtllm-tensorrt",
        "engine_options": {"calib_dataset": str(tmp_path / "calib")},
        "search_space": {"quantization": {"choices": ["none", "fp8_kv_fp8", "w4a16_awq"]}},
        "workload": {
            "num_requests": 16,
            "warmup_requests": 2,
            "arrival": {"mode": "concurrency", "concurrency": 4},
        },
        **kw,
    }
    return validate_spec(data)


@pytest.mark.parametrize("q", ["none", "fp8_kv_fp8", "w4a16_awq", "int8_sq_per_channel"])
def test_export_writes_conformant_files(tmp_path, q):
    spec = trt_spec(tmp_path)
    k = knobs(quantization=q, max_batch_size=256, chunked_prefill=True)
    files = export(spec, 7, k, {"output_tok_s": 5000.0}, tmp_path / "out", {"output_tok_s": 4000.0}, "run123")
    names = {f.name for f in files}
    assert names >= {
        "extra_llm_api_options.yaml",
        "runtime_options.yaml",
        "build_args.json",
        "build_engine.py",
        "commands.sh",
        "README.md",
        "trial.json",
    }
    full = yaml.safe_load((tmp_path / "out/extra_llm_api_options.yaml").read_text())
    assert not check_kwargs("TrtLlmArgs", full) and full["max_batch_size"] == 256
    assert full["enable_chunked_prefill"] is True and full["build_config"]["max_input_len"] == 4096
    assert not check_kwargs("TrtLlmArgs", yaml.safe_load((tmp_path / "out/runtime_options.yaml").read_text()))
    ast.parse((tmp_path / "out/build_engine.py").read_text())
    build = json.loads((tmp_path / "out/build_args.json").read_text())
    assert not check_kwargs("TrtLlmArgs", build)
    readme = (tmp_path / "out/README.md").read_text()
    assert "1.25x the baseline" in readme and "run123" in readme
    # every trtllm-bench / trtllm-serve command line in commands.sh uses recorded flags
    sh = (tmp_path / "out/commands.sh").read_text().replace("\\\n", " ")
    for line in sh.splitlines():
        line = line.lstrip("# ").strip()
        for tool in ("trtllm-bench", "trtllm-serve"):
            if line.startswith(tool + " "):
                words = line.split()[1:]
                if tool == "trtllm-serve":
                    assert not check_cli("", words[1:], tool="trtllm-serve"), line
                else:
                    sub = next(w for w in words if w in ("build", "throughput"))
                    i = words.index(sub)
                    assert not check_cli("", words[:i]), line
                    assert not check_cli(sub, words[i + 1 :]), line
    assert subprocess.run(["bash", "-n", str(tmp_path / "out/commands.sh")]).returncode == 0


def test_crosscheck_commands_and_report_parsing(tmp_path):
    spec = trt_spec(tmp_path)
    for q, own in (("fp8_kv_fp8", None), ("w4a16_awq", None), ("int8_sq_per_channel", tmp_path / "eng")):
        c = crosscheck.commands(
            spec, spec.options(), knobs(quantization=q), tmp_path, own_engine=own, eos_id=2
        )
        i = c.throughput.index("throughput")
        assert not check_cli("", c.throughput[1:i]) and not check_cli("throughput", c.throughput[i + 1 :])
        assert "--concurrency" in c.throughput and "--streaming" in c.throughput
        if c.build is not None:
            j = c.build.index("build")
            assert not check_cli("build", c.build[j + 1 :]) and "--quantization" in c.build
    with pytest.raises(crosscheck.CrosscheckError, match="SmoothQuant|W8A8"):
        crosscheck.commands(spec, spec.options(), knobs(quantization="int8_sq_per_channel"), tmp_path)
    paths = report_paths()
    for name, path in shared_crosscheck.REPORT_METRICS.items():
        assert ".".join(path) in paths, name
    # a report shaped like the recorded keys: values land on our metric names; missing blocks are skipped
    report = {
        "performance": {
            "system_output_throughput_tok_s": 1234.5,
            "request_latency_percentiles_ms": {"p99": 80.0},
        },
        "streaming_metrics": {"ttft_percentiles": {"p50": 12.0}, "avg_tpot_ms": 3.5},
    }
    m = shared_crosscheck.report_metrics(report)
    assert m == {"output_tok_s": 1234.5, "e2e_ms_p99": 80.0, "ttft_ms_p50": 12.0, "tpot_ms_mean": 3.5}
    rows = shared_crosscheck.dataset_lines([type("R", (), {"input_ids": [1, 2], "max_new_tokens": 5})()])
    assert set(rows[0]) <= set(snapshot()["dataset_jsonl_keys"]) and rows[0]["output_tokens"] == 5


def test_adapter_requests_translate_to_greedy_sampling_with_stops():
    """The lm-eval adapter's requests (stop strings, max_gen_toks) become SamplingParams 1.2.x accepts."""
    from workbench.engines.base import Request

    r = Request("acc1-0", [1, 2, 3], 256, ignore_eos=False, stop=["Question:", "</s>"])
    args = TA.sampling_args(r.max_new_tokens, r.ignore_eos, r.stop, detokenize=bool(r.stop))
    sp = strict_api().SamplingParams(**args)
    assert sp.max_tokens == 256 and sp.stop == ["Question:", "</s>"] and sp.ignore_eos is False


# --------------------------------------------------------------------------- without tensorrt_llm
def test_nothing_but_the_engine_imports_tensorrt_llm():
    importers = []
    for f in (ROOT / "workbench").rglob("*.py"):
        text = f.read_text()
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] == "tensorrt_llm" for n in names):
                importers.append(f.relative_to(ROOT).as_posix())
    assert set(importers) <= {"workbench/engines/trtllm/engine.py"}
    code = (
        "import sys, workbench.cli, workbench.study, workbench.export, workbench.engines.trtllm.crosscheck, workbench.engines.trtllm;"
        "import workbench.engines.trtllm_tensorrt.crosscheck, workbench.engines.trtllm_tensorrt;"
        "from workbench.engines import get_engine_class; get_engine_class('trtllm').default_knobs();"
        "get_engine_class('trtllm-tensorrt').default_knobs();"
        "print('tensorrt_llm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(available(), reason="tensorrt_llm is installed here")
def test_without_tensorrt_llm_choosing_trtllm_is_a_clear_error(write_study):
    from workbench.engines.trtllm import TrtllmNotInstalled

    with pytest.raises(TrtllmNotInstalled, match="tensorrt_llm==1.2.1.*release container"):
        load_api()
    p = write_study(engine="trtllm", search_space={"max_batch_size": {"choices": [8]}})
    for cmd in (["trial", str(p)], ["tune", str(p), "--storage", "sqlite:///:memory:"]):
        r = subprocess.run([sys.executable, "-m", "workbench.cli", *cmd], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "tensorrt_llm" in r.stderr and "release container" in r.stderr and "engine: hf" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "validate", str(p)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr  # designing a study needs no GPU


def test_engine_options_and_random_weights_are_validated(write_study, tmp_path):
    from workbench.spec import SpecError, load_spec

    p = write_study(engine="trtllm", engine_options={"calib_batch": 3}, search_space={"max_batch_size": 8})
    with pytest.raises(
        SpecError,
        match=r"line \d+, engine_options.calib_batch: unknown key; allowed keys: tensor_parallel_size",
    ):
        load_spec(p)
    p = write_study(engine="hf", engine_options={"x": 1})
    with pytest.raises(SpecError, match="takes no engine_options"):
        load_spec(p)
    p = write_study(**{"model.load_format": "dummy", "accuracy": {"limit": 5}})
    with pytest.raises(SpecError, match="accuracy would be meaningless"):
        load_spec(p)
