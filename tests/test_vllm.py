"""The `vllm` package against vLLM 0.26.0's recorded API (CI has no GPU and no vLLM).

The translation and the `vllm serve` command are checked over the knob space against the recorded
engine arguments and parser; the in-process runner and the server engine run whole trials against
strict stand-ins built from the same record (`workbench/engines/vllm/api/standin.py`), which refuse
any name, type or option vLLM 0.26.0 does not have.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import scaled
from tests.engines import conformance as C
from workbench.engines import get_engine_class
from workbench.engines.base import Artifact, OpenContext, Request
from workbench.engines.vllm import api
from workbench.engines.vllm.api import standin
from workbench.engines.vllm.args import engine_args, serve_command, serve_flags
from workbench.engines.vllm.knobs import KNOB_DEFS
from workbench.engines.vllm.resolved import from_log, from_metrics, from_server_info
from workbench.types import DeviceInfo, FeasibilityContext

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "fixtures" / "vllm_standin"
H200 = DeviceInfo("cuda", "NVIDIA H200", 150_119_874_560, (9, 0), 0)
A100 = DeviceInfo("cuda", "NVIDIA A100-SXM4-80GB", 85_899_345_920, (8, 0), 0)
SHAPE = ROOT / "studies" / "shapes" / "llama-3.1-8b"
DEFAULTS = {k: v.default for k, v in KNOB_DEFS.items()}


def vllm_options(raw: dict | None = None):
    """A study's engine_options as the trial layer hands them to the engine: validated once."""
    return get_engine_class("vllm").parse_options(raw or {})


def ctx_for(knobs: dict, device: DeviceInfo = H200, **fields) -> OpenContext:
    base = {"model_source": str(SHAPE), "device": device, "model_dtype": "bfloat16", "knobs": knobs}
    fields["options"] = vllm_options(fields.get("options"))
    return OpenContext(**{**base, **fields})


def test_the_record_is_vllm_0_26_read_from_vllm_itself():
    snap = api.snapshot()
    assert snap["vllm_version"] == "0.26.0" and "imported vllm 0.26.0" in snap["method"]
    assert len(snap["engine_args"]) > 200 and len(snap["serve_options"]) > 250
    assert all(
        f["path"].startswith("vllm/") and f.get("version", "0.26.0") == "0.26.0" for f in snap["facts"]
    )
    # the names the knobs become, as vLLM 0.26.0 names them
    for field in (
        "max_num_seqs",
        "max_num_batched_tokens",
        "gpu_memory_utilization",
        "quantization",
        "enable_prefix_caching",
        "block_size",
        "kv_cache_dtype",
        "enforce_eager",
        "compilation_config",
        "enable_chunked_prefill",
        "max_num_partial_prefills",
        "max_long_partial_prefills",
        "long_prefill_token_threshold",
        "async_scheduling",
        "max_model_len",
    ):
        assert field in snap["engine_args"], field
    assert snap["engine_args"]["gpu_memory_utilization"]["default"] == 0.92


def knob_space() -> list[dict]:
    """Every combination of the knobs whose values change the rendering, the numeric ones cycled."""
    axes = {
        k: [None, *v.choices] if v.choices else [None, True, False]
        for k, v in KNOB_DEFS.items()
        if v.type in ("categorical", "bool") and k != "quantization"
    }
    axes["kv_cache_dtype"] = list(KNOB_DEFS["kv_cache_dtype"].choices or ())
    axes["enforce_eager"] = [False, True]
    quants = list(KNOB_DEFS["quantization"].choices or ())
    numbers = itertools.cycle(
        [
            {"max_batch_size": 256, "max_num_tokens": 8192, "kv_cache_fraction": 0.9, "max_model_len": 4096},
            {
                "max_num_partial_prefills": 2,
                "max_long_partial_prefills": 1,
                "long_prefill_token_threshold": 256,
            },
            {},
        ]
    )
    out = []
    for q, values in itertools.product(quants, itertools.product(*axes.values())):
        out.append({**DEFAULTS, "quantization": q, **dict(zip(axes, values, strict=True)), **next(numbers)})
    return out


def test_every_translation_of_the_knob_space_fits_vllm_0_26():
    snap = api.snapshot()
    space = knob_space()
    assert len(space) > 10_000
    for knobs in space:
        ctx = ctx_for(knobs, tokenizer="/tok", load_format="dummy")
        args = engine_args(knobs, ctx)
        assert api.check_engine_args(args, snap) == [], knobs
        cmd = serve_command("vllm", args, 8000, snap)
        assert api.check_serve_command(cmd, snap) == [], cmd


def test_auto_knobs_pass_no_flag_so_the_baseline_is_vllms_own_defaults(tmp_path):
    cls = get_engine_class("vllm")
    cmd = cls.command(ctx_for(DEFAULTS, options={"executable": "/x/vllm"}), DEFAULTS, 8123, tmp_path)
    assert cmd == [
        "/x/vllm",
        "serve",
        str(SHAPE),
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--dtype",
        "bfloat16",
        "--seed",
        "0",
    ]
    assert [k for k, v in DEFAULTS.items() if v is None] and engine_args(DEFAULTS, ctx_for(DEFAULTS)) == {
        "model": str(SHAPE),
        "dtype": "bfloat16",
        "seed": 0,
    }


@pytest.mark.parametrize(
    "knob, value, flags",
    [
        ("max_batch_size", 64, ["--max-num-seqs", "64"]),
        ("max_num_tokens", 2048, ["--max-num-batched-tokens", "2048"]),
        ("kv_cache_fraction", 0.85, ["--gpu-memory-utilization", "0.85"]),
        ("quantization", "fp8", ["--quantization", "fp8"]),
        ("quantization", "modelopt_nvfp4", ["--quantization", "modelopt_fp4"]),
        ("kv_cache_dtype", "fp8", ["--kv-cache-dtype", "fp8"]),
        ("enable_prefix_caching", False, ["--no-enable-prefix-caching"]),
        ("enable_prefix_caching", True, ["--enable-prefix-caching"]),
        ("block_size", 32, ["--block-size", "32"]),
        ("enforce_eager", True, ["--enforce-eager"]),
        (
            "cudagraph_mode",
            "FULL_DECODE_ONLY",
            ["--compilation-config", '{"cudagraph_mode":"FULL_DECODE_ONLY"}'],
        ),
        ("enable_chunked_prefill", False, ["--no-enable-chunked-prefill"]),
        ("max_num_partial_prefills", 4, ["--max-num-partial-prefills", "4"]),
        ("async_scheduling", False, ["--no-async-scheduling"]),
        ("max_model_len", 4096, ["--max-model-len", "4096"]),
    ],
)
def test_a_set_knob_reaches_vllm_under_its_own_name(knob, value, flags):
    knobs = {**DEFAULTS, knob: value}
    rendered = serve_flags(engine_args(knobs, ctx_for(knobs)), api.snapshot())
    base = serve_flags(engine_args(DEFAULTS, ctx_for(DEFAULTS)), api.snapshot())
    assert [f for f in rendered if f not in base or rendered.count(f) > base.count(f)] == flags


def test_the_checks_refuse_what_vllm_refuses():
    snap = api.snapshot()
    assert api.check_engine_args({"max_num_seq": 8}, snap) == [
        "EngineArgs has no field 'max_num_seq' in vLLM 0.26.0"
    ]
    assert "does not fit" in api.check_engine_args({"max_num_seqs": "8"}, snap)[0]
    assert (
        "does not fit the recorded type Literal" in api.check_engine_args({"kv_cache_dtype": "int3"}, snap)[0]
    )
    assert api.check_engine_args({"compilation_config": {"cudagraph_mode": "FULL"}}, snap) == []
    ok = ["vllm", "serve", "m", "--max-num-seqs", "8", "--no-enable-prefix-caching"]
    assert api.check_serve_command(ok, snap) == []
    assert api.check_serve_command([*ok, "--max-batch-size", "8"], snap) == [
        "vllm serve 0.26.0 has no option --max-batch-size"
    ]
    assert api.check_serve_command(["vllm", "serve", "m", "--max-num-seqs", "x"], snap) == [
        "--max-num-seqs 'x' does not parse as int"
    ]
    assert (
        "is not one of"
        in api.check_serve_command(["vllm", "serve", "m", "--kv-cache-dtype", "int3"], snap)[0]
    )
    assert api.check_serve_command(["vllm", "serve", "m", "--enforce-eager=1"], snap) == [
        "--enforce-eager takes no value"
    ]
    assert api.check_sampling_params({"max_new_tokens": 3}, snap) == [
        "SamplingParams has no field 'max_new_tokens' in vLLM 0.26.0"
    ]


@pytest.mark.parametrize(
    "knobs, device, options, expect",
    [
        ({}, C.CPU, {}, "cannot run on cpu"),
        ({}, C.CPU, {"target_device": "cpu"}, None),
        ({"quantization": "fp8"}, C.CPU, {"target_device": "cpu"}, "needs a GPU"),
        ({"quantization": "modelopt_w4a16_awq"}, H200, {}, "not W4A16_AWQ"),
        ({"quantization": "modelopt_fp8"}, H200, {}, None),
        ({"quantization": "modelopt_fp8"}, A100, {}, "needs compute capability 8.9"),
        ({"quantization": "modelopt_nvfp4"}, H200, {}, None),
        ({"max_batch_size": 512, "max_num_tokens": 256}, H200, {}, "max_num_batched_tokens >= max_num_seqs"),
        ({"enable_chunked_prefill": False, "max_num_tokens": 2048}, H200, {}, "enable_chunked_prefill=false"),
        ({"kv_cache_fraction": 0.05}, H200, {}, "less than the weights"),
        ({"kv_cache_fraction": 0.5}, H200, {}, None),
    ],
)
def test_feasibility_before_any_work(knobs, device, options, expect):
    cfg = json.loads((SHAPE / "config.json").read_text())
    ctx = FeasibilityContext(model_config=cfg, model_dtype="bfloat16", options=vllm_options(options))
    for name in ("vllm", "vllm-inprocess"):
        why = get_engine_class(name).infeasible_reason({**DEFAULTS, **knobs}, device, ctx)
        assert (why is None) if expect is None else (expect in why), (name, why)


def test_resolved_settings_are_read_from_what_vllm_exposes(tmp_path):
    snap = api.snapshot()
    line = standin.cache_info_line(
        snap, {"block_size": 16, "num_gpu_blocks": 57606, "kv_cache_size_tokens": 921696}
    )
    got = from_metrics("# HELP x\n" + line + 'vllm:num_requests_running{engine="0"} 3\n')
    assert got["kv_cache_tokens"] == 921696 and got["num_gpu_blocks"] == 57606 and got["block_size"] == 16
    assert from_metrics("vllm:num_requests_running 1\n") == {}
    assert from_server_info(
        {"vllm_config": {"scheduler_config": {"max_num_seqs": 1024, "max_num_batched_tokens": 8192}}}
    ) == {"max_num_seqs": 1024, "max_num_batched_tokens": 8192, "scheduler_source": "server_info"}
    fmt = snap["log_lines"]
    log = tmp_path / "server.log"
    log.write_text(
        (fmt["kv_cache_tokens"]["format"] % "921,696")
        + "\n"
        + (fmt["chunked_prefill"]["format"] % 8192)
        + "\n"
    )
    assert from_log(log) == {
        "kv_cache_tokens": 921696,
        "kv_cache_tokens_source": "log",
        "max_num_batched_tokens": 8192,
        "max_num_batched_tokens_source": "log",
    }


# ---------------------------------------------------------------------------------- the stand-ins
@pytest.fixture
def standin_vllm(monkeypatch):
    """The stand-in `vllm` package importable (sys.path only; removed with its modules afterwards)."""
    monkeypatch.syspath_prepend(str(STANDIN))
    yield
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture
def standin_serve(tmp_path) -> Path:
    """A `vllm` program: the recorded parser's checks, then the trivial server with vLLM's routes."""
    exe = tmp_path / "bin" / "vllm"
    exe.parent.mkdir()
    exe.write_text(
        f"#!{sys.executable}\nimport sys\nfrom workbench.engines.vllm.api.standin import serve_main\n"
        "sys.exit(serve_main())\n"
    )
    exe.chmod(0o755)
    return exe


def test_the_in_process_runner_against_the_strict_stand_in(standin_vllm, tiny_model):
    cls = get_engine_class("vllm-inprocess")
    assert cls.check_available() is None
    C.check_run("vllm-inprocess", C.Setup(model=str(tiny_model), options={"target_device": "cpu"}))
    knobs = {**DEFAULTS, "max_batch_size": 8, "block_size": 32}
    ctx = OpenContext(
        model_source=str(tiny_model),
        device=C.CPU,
        knobs=knobs,
        options=vllm_options({"target_device": "cpu"}),
    )
    runner = cls(ctx).open(Artifact(tiny_model, None, {}), knobs)
    engine = runner.engine
    try:
        cfg = runner.resolved_config
        # OPENAI_API_SERVER's defaults where knobs are auto, the knobs where set; capacity = blocks x block
        assert cfg["max_num_seqs"] == 8 and cfg["max_num_batched_tokens"] == 8192 and cfg["block_size"] == 32
        assert cfg["kv_cache_tokens"] == standin.NUM_GPU_BLOCKS * 32 and "max_num_tokens" in cfg["auto_knobs"]
        recs = runner.generate(
            [Request("a", [1, 2, 3], 6), Request("b", [5], 2, ignore_eos=False, stop=["x"])], timeout=30
        )
        assert [r.output_ids for r in recs] == [[6, 7, 8, 9, 10, 11], [5, 6]] and all(
            r.error is None for r in recs
        )
        assert [len(r.token_times) for r in recs] == [6, 2] and recs[1].text == ""
    finally:
        runner.close()
    with pytest.raises(RuntimeError):  # the stand-in, like vLLM, refuses work after shutdown
        asyncio.run(engine.generate({"prompt_token_ids": [1]}, None, "z").__anext__())


def test_the_stand_in_refuses_an_argument_vllm_lacks(standin_vllm, tiny_model):
    knobs = DEFAULTS
    ctx = OpenContext(
        model_source=str(tiny_model),
        device=C.CPU,
        knobs=knobs,
        options=vllm_options({"target_device": "cpu", "engine_args": {"max_batch_size": 8}}),
    )
    with pytest.raises(TypeError, match="EngineArgs has no field 'max_batch_size'"):
        get_engine_class("vllm-inprocess")(ctx).open(Artifact(tiny_model, None, {}), knobs)


def test_the_server_engine_runs_a_trial_against_the_stand_in(standin_serve, tiny_model, tmp_path):
    C.check_run(
        "vllm",
        C.Setup(model=str(tiny_model), options={"executable": str(standin_serve), "target_device": "cpu"}),
    )
    study = {
        "name": "vllm-standin",
        "model": {"path": str(tiny_model), "dtype": "float32"},
        "engine": "vllm",
        "engine_options": {
            "executable": str(standin_serve),
            "target_device": "cpu",
            "startup_timeout_s": scaled(60),
        },
        "search_space": {"max_batch_size": 8, "enable_prefix_caching": False},
        "workload": {
            "num_requests": 4,
            "warmup_requests": 1,
            "input_len": 16,
            "output_len": 8,
            "sweep": {"concurrency": [1, 4], "requests_per_load": 2},
        },
        "slo": {"ttft_ms_p95": 60_000, "tpot_ms_p95": 60_000},
        "trial": {"device": "cpu", "timeout_s": scaled(300)},
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(study))
    r = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "trial", str(p), "--out", str(tmp_path / "t"), "--json"],
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "t" / "result.json").read_text())
    ec = res["engine_config"]
    assert (
        "--max-num-seqs 8 --no-enable-prefix-caching" in ec["command"]
        and "--max-num-batched-tokens" not in ec["command"]
    )
    assert (
        ec["server.kv_cache_tokens"] == standin.NUM_GPU_BLOCKS * 16 and res["metrics"]["kv_cache_tokens"] > 0
    )
    assert (
        ec["server.kv_cache_tokens_source"].startswith("metrics:")
        and ec["server.scheduler_source"] == "server_info"
    )
    assert ec["server.max_num_seqs"] == 8 and ec["server.max_num_batched_tokens"] == 8192
    assert "max_num_tokens" in ec["server.auto_knobs"] and "max_batch_size" not in ec["server.auto_knobs"]
    assert [p["num_requests"] for p in res["bench"]["sweep"]["points"]] == [8, 8]
    assert res["metrics"]["slo_max_load"] == 4.0


def test_a_command_vllm_would_refuse_fails_the_trial_with_its_message(standin_serve, tiny_model, tmp_path):
    knobs = DEFAULTS
    opts = {
        "executable": str(standin_serve),
        "target_device": "cpu",
        "extra_args": ["--max-batch-size", "8"],
        "startup_timeout_s": scaled(60),
    }
    ctx = OpenContext(
        model_source=str(tiny_model),
        device=C.CPU,
        knobs=knobs,
        options=vllm_options(opts),
        out_dir=str(tmp_path),
    )
    with pytest.raises(Exception, match="no option --max-batch-size"):
        get_engine_class("vllm")(ctx).open(Artifact(tiny_model, None, {}), knobs)


def test_check_available_reads_the_configured_executable(standin_serve, tmp_path):
    cls = get_engine_class("vllm")
    assert cls.check_available_for(vllm_options({"executable": str(standin_serve)})) is None
    why = cls.check_available_for(vllm_options({"executable": str(tmp_path / "nope" / "vllm")}))
    assert "engine_options.executable" in why and "pip install vllm==0.26.0" in why


@pytest.mark.parametrize("engine", ["vllm", "vllm-inprocess"])
def test_without_vllm_a_study_stops_with_the_install_route(engine, tiny_model, tmp_path):
    study = {
        "name": "novllm",
        "model": {"path": str(tiny_model)},
        "engine": engine,
        "search_space": {"max_batch_size": 8},
        "engine_options": {"executable": str(tmp_path / "missing-vllm")} if engine == "vllm" else {},
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(study))
    for cmd in ("trial", "tune"):
        r = subprocess.run(
            [sys.executable, "-m", "workbench.cli", cmd, str(p)],
            capture_output=True,
            text=True,
            timeout=scaled(120),
            cwd=tmp_path,
        )
        assert r.returncode in (2, 3), (cmd, r.returncode, r.stderr)
        out = r.stdout + r.stderr
        assert "pip install vllm==0.26.0" in out and "Traceback" not in out, out


def test_doctor_says_whether_vllm_can_run_and_where(standin_serve):
    notes = get_engine_class("vllm").doctor_notes()
    assert any("vLLM 0.26.0" in n for n in notes)
    assert any("executable" in n for n in notes)


def test_the_scraped_vllm_series_are_the_ones_vllm_0_26_exposes():
    from workbench.engines.server.scrape import PROMETHEUS_NAMES

    exposed = api.metric_names()
    for field, names in PROMETHEUS_NAMES.items():
        first = next((n for n in names if n.startswith("vllm:")), None)
        assert first is None or first in exposed, (field, first)
    assert "vllm:cache_config_info" in exposed


def test_a_modelopt_choice_is_built_once_and_served_from_its_checkpoint(tmp_path, tiny_model):
    pytest.importorskip("modelopt", reason="nvidia-modelopt is not installed")
    from workbench.spec import load_spec
    from workbench.trials.cache import EngineCache
    from workbench.trials.orchestrator.planning import make_plan

    data = tmp_path / "studies" / "data"
    data.mkdir(parents=True)
    (data / "calib.jsonl").write_text(
        "".join(json.dumps({"text": f"The cat sat on mat {i}. " * 4}) + "\n" for i in range(8))
    )
    study = {
        "name": "vq",
        "model": {"path": str(tiny_model), "dtype": "float32"},
        "engine": "vllm",
        "engine_options": {
            "calib_dataset": "data/calib.jsonl",
            "calib_samples": 8,
            "calib_max_seq_length": 32,
            "calib_batch_size": 4,
            "target_device": "cpu",
        },
        "search_space": {"quantization": {"choices": ["none", "fp8", "modelopt_fp8"]}},
        "workload": {"num_requests": 2, "input_len": 8, "output_len": 2},
        "trial": {"device": "cpu"},
    }
    p = tmp_path / "studies" / "vq.yaml"
    p.write_text(yaml.safe_dump(study))
    spec = load_spec(p)
    cls = get_engine_class("vllm")
    plans = {
        q: make_plan(spec, q, {"quantization": q}, C.CPU, tmp_path / "cache", tmp_path / q)
        for q in ("none", "fp8", "modelopt_fp8")
    }
    assert (
        plans["none"].build_key is None and plans["fp8"].build_key is None
    )  # vLLM quantizes fp8 while loading
    plan = plans["modelopt_fp8"]
    ctx = plan.open_context()
    art = EngineCache(plan.cache_dir).get_or_build(
        "vllm",
        plan.build_key,
        plan.key_material,
        lambda out: cls(ctx).build(plan.build_knobs, out),
    )
    quant = json.loads((art.path / "checkpoint" / "hf_quant_config.json").read_text())
    assert quant["quantization"]["quant_algo"] == "FP8"
    served = cls.serving_context(ctx, art)
    assert served.model_source == str(art.path / "checkpoint") and served.load_format == "auto"
    cmd = cls.command(served, plan.knobs, 8000, tmp_path / "w")
    assert cmd[2] == str(art.path / "checkpoint") and cmd[cmd.index("--quantization") + 1] == "modelopt"


def test_export_is_the_command_the_server_ran(tmp_path):
    cls = get_engine_class("vllm")
    knobs = {**DEFAULTS, "max_batch_size": 256, "quantization": "fp8"}
    ctx = ctx_for(knobs, options={"executable": "/opt/v/bin/vllm"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (script,) = cls(ctx).export(knobs, tmp_path / "a")
    assert script.read_text().splitlines()[-1] == "exec " + " ".join(
        cls.command(ctx, knobs, 8000, tmp_path / "w")
    )
    built = {**knobs, "quantization": "modelopt_fp8"}
    (script,) = cls(ctx_for(built)).export(built, tmp_path / "b")
    text = script.read_text()
    assert (
        'serve "$CHECKPOINT" --host' in text
        and "CHECKPOINT:?" in text
        and str(SHAPE) not in text.splitlines()[-1]
    )
    r = subprocess.run(["sh", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "ModelOpt checkpoint" in r.stderr
