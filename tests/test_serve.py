"""Serving mode with real servers: transformers-serve on the tiny model, the trivial server for the client
and failures (exit at start, hang, killed mid-run), kill -9 of `tune`, and the vendors' command lines."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import GSM8K_DIR as DATA
from tests.conftest import ROOT
from workbench.engines import get_engine_class
from workbench.engines.base import Artifact, FeasibilityContext, OpenContext, Request
from workbench.engines.server.process import ServerError, port_is_free
from workbench.engines.server.scrape import normalize
from workbench.engines.sglang import recorded
from workbench.types import DeviceInfo

CPU = DeviceInfo("cpu", "cpu", 24 * 1024**3)
H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", 85_520_809_984, (9, 0), 0)
TRIVIAL = f"{sys.executable} -m workbench.engines.server.trivial --port {{port}}"


def ctx_for(
    engine: str,
    model: Path,
    tmp: Path,
    options: dict | None = None,
    knobs: dict | None = None,
    device: DeviceInfo = CPU,
) -> tuple[OpenContext, dict]:
    cls = get_engine_class(engine)
    k = {**cls.default_knobs(), **(knobs or {})}
    ctx = OpenContext(
        model_source=str(model),
        device=device,
        model_dtype="float32",
        knobs=k,
        options=cls.parse_options(options),
        cpu_kv_budget_gb=0.01,
        out_dir=str(tmp),
    )
    return ctx, k


def open_runner(engine: str, model: Path, tmp: Path, **kw):
    ctx, k = ctx_for(engine, model, tmp, **kw)
    return get_engine_class(engine)(ctx).open(Artifact(model, None, {}), k)


def server_pids(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "--", marker], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != os.getpid()]


# ------------------------------------------------------------------------------------- transformers-serve
def test_transformers_serve_streams_and_stops(tiny_model, tmp_path):
    r = open_runner("transformers-serve", tiny_model, tmp_path, knobs={"page_size": 16})
    port = int(r.base_url.rsplit(":", 1)[1])
    pid = r.proc.proc.pid
    try:
        st = r.stats()
        assert (
            st.weights_bytes > 0
            and st.kv_cache_tokens > 0
            and st.kv_bytes_per_token > 0
            and st.dtype == "float32"
        )
        recs = r.generate([Request(f"s{i}", list(range(5, 25)), 12) for i in range(6)], timeout=120)
        for rec in recs:
            assert rec.error is None and rec.output_len == 12  # EOS ignored: exactly 12 tokens each
            assert rec.arrival < rec.token_times[0] <= rec.token_times[-1]
            assert len(set(rec.token_times)) > 1  # tokens arrived one by one, not all at once
        assert r.usage_check["prompt_checked"] >= 6 and r.usage_check["prompt_mismatch"] == 0
        assert r.usage_check["completion_tokens"] >= 72  # the six requests (and the readiness probe)
        assert (
            r.usage_check["completion_tokens"] <= 1.5 * r.usage_check["text_chunks"]
        )  # about a chunk a token
        time.sleep(1.5)
        samples = r.server_metrics()
        assert samples and any(s.get("kv_cache_usage") is not None for s in samples)
        assert max(s["inflight"] for s in samples) >= 0
    finally:
        r.close()
    assert r.resolved_config["server_exit_code"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_free(port)


def test_a_serving_trial_with_a_sweep_and_an_slo(tiny_model, tmp_path):
    from tests.conftest import small_study
    from workbench.spec import StudySpec
    from workbench.trials.orchestrator.run import run_trial

    data = small_study(tiny_model, engine="transformers-serve")
    data["search_space"] = {"page_size": 16, "max_num_tokens": 128}
    data["workload"] = {
        "num_requests": 6,
        "warmup_requests": 1,
        "input_len": 16,
        "output_len": 8,
        "sweep": {"concurrency": [1, 3]},
    }
    data["slo"] = {"ttft_ms_p95": 60000, "tpot_ms_p95": 60000}
    data["trial"] = {**data.get("trial", {}), "device": "cpu", "timeout_s": 300}
    spec = StudySpec.model_validate(data)
    res = run_trial(spec, out_dir=tmp_path / "t")
    assert res.status == "COMPLETE", res.failure
    sweep = res.bench["sweep"]
    assert [p["load"] for p in sweep["points"]] == [1.0, 3.0]
    assert res.metrics["slo_max_load"] == 3.0  # generous targets: the highest load meets them
    assert res.metrics["goodput_fraction"] == 1.0 and res.metrics["error_rate"] == 0.0
    assert res.metrics["goodput_output_tok_s"] == pytest.approx(res.metrics["output_tok_s"])
    assert "kv_cache_usage" in res.bench["server_metrics"]
    assert res.bench["usage_check"]["tokens_per_chunk"] <= 1.5 and "warning" not in res.bench["usage_check"]


def test_gsm8k_through_the_server_equals_in_process(tiny_model, tmp_path):
    from workbench.accuracy import WorkbenchLM, evaluate
    from workbench.accuracy.server import server_lm

    hf = open_runner("hf", tiny_model, tmp_path / "hf", knobs={"page_size": 16})
    try:
        mine = evaluate(WorkbenchLM(hf, max_gen_toks=24), data_path=DATA, limit=4)
    finally:
        hf.close()
    srv = open_runner("transformers-serve", tiny_model, tmp_path / "srv", knobs={"page_size": 16})
    try:
        theirs = evaluate(
            server_lm(srv.server(), srv.tokenizer, 24, 4096, num_concurrent=2), data_path=DATA, limit=4
        )
    finally:
        srv.close()
    a = {(s["doc_id"], s["filter"]): s["resps"] for s in mine.samples}
    b = {(s["doc_id"], s["filter"]): s["resps"] for s in theirs.samples}
    assert a.keys() == b.keys() and len(a) == 8
    assert a == b  # greedy, fp32, CPU: the same continuations one by one
    assert mine.score == theirs.score


# --------------------------------------------------------------------------- the openai engine and failures
def test_the_trivial_server_through_the_openai_engine(tiny_model, tmp_path):
    r = open_runner("openai", tiny_model, tmp_path, options={"command": TRIVIAL})
    try:
        recs = r.generate([Request(f"x{i}", [1, 2, 3], 7) for i in range(20)], timeout=60)
        assert all(x.error is None and x.output_len == 7 and x.input_len == 3 for x in recs)
        assert "--port" in r.resolved_config["command"]
        # its capabilities are declared, not probed for: a server, whose failed requests are results
        assert r.counts_errors and r.server().base_url == r.base_url and r.server().token_prompts
        assert r.usage_check["completion_tokens"] >= 140 and r.server_metrics()
    finally:
        r.close()


def test_a_long_lived_server_gets_a_prefix_cache_salt_per_trial(tiny_model, tmp_path):
    """One server across trials (`url:`) kept a trial's prompts in vLLM's prefix cache, so the next
    trial with the same seed ran 10-17 % fast (docs/benchmarks.md, 2026-12-03): with
    `cache_salt_field` every request of a trial carries that trial's salt, and each trial its own."""
    opts = {"command": TRIVIAL, "cache_salt_field": "cache_salt"}
    runners = [open_runner("openai", tiny_model, tmp_path / str(i), options=opts) for i in range(2)]
    plain = open_runner("openai", tiny_model, tmp_path / "plain", options={"command": TRIVIAL})
    try:
        reqs = [Request(f"s{i}", [1, 2, 3], 4, ignore_eos=True) for i in range(3)]
        salts = [{r.payload(q)["cache_salt"] for q in reqs} for r in runners]
        assert [len(s) for s in salts] == [1, 1] and salts[0] != salts[1]
        assert runners[0].resolved_config["request_fields"] == "cache_salt"
        assert "cache_salt" not in plain.payload(reqs[0]) and "request_fields" not in plain.resolved_config
        recs = runners[0].generate(reqs, timeout=60)  # the server takes the field
        assert [x.error for x in recs] == [None] * 3 and {x.output_len for x in recs} == {4}
    finally:
        for r in [*runners, plain]:
            r.close()


@pytest.mark.parametrize("mode,match", [("exit", "exited with code 3"), ("hang", "did not become ready")])
def test_a_server_that_fails_to_start_fails_with_its_log(tiny_model, tmp_path, mode, match):
    opts = {"command": TRIVIAL + f" --mode {mode}", "startup_timeout_s": 5}
    with pytest.raises(ServerError, match=match) as e:
        open_runner("openai", tiny_model, tmp_path, options=opts)
    assert "trivial server: mode" in str(e.value)  # the log's last lines are the cause
    assert not server_pids(f"mode {mode}")


def test_a_server_killed_mid_run_fails_the_trial(tiny_model, tmp_path):
    r = open_runner("openai", tiny_model, tmp_path, options={"command": TRIVIAL + " --mode die-after:3"})
    try:
        with pytest.raises(ServerError, match="killed by SIGKILL"):
            r.generate([Request(f"d{i}", [1, 2], 4) for i in range(8)], timeout=60)
    finally:
        r.close()


def test_kill_9_of_tune_leaves_no_server(tiny_model, tmp_path):
    marker = f"--delay-ms 50.{os.getpid()}"
    study = tmp_path / "s.yaml"
    study.write_text(
        json.dumps(
            {
                "name": "killtune",
                "model": {"path": str(tiny_model)},
                "engine": "openai",
                "engine_options": {"command": TRIVIAL + f" {marker}"},
                "search_space": {"max_batch_size": {"choices": [1, 2]}},
                "workload": {
                    "num_requests": 400,
                    "warmup_requests": 0,
                    "input_len": 4,
                    "output_len": 64,
                    "arrival": {"mode": "concurrency", "concurrency": 1},
                },
                "trial": {"device": "cpu", "timeout_s": 300},
                "budget": {"n_trials": 1},
            }
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKBENCH_HOME": str(tmp_path / "home"),
        "WORKBENCH_STORAGE": f"sqlite:///{tmp_path}/o.db",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
    }
    tune = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "tune", str(study)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not server_pids(marker) and time.monotonic() < deadline:
            assert tune.poll() is None, "tune ended before its server started"
            time.sleep(0.2)
        assert server_pids(marker), "the server never started"
        time.sleep(1.0)
    finally:
        os.kill(tune.pid, signal.SIGKILL)
        tune.wait()
    deadline = time.monotonic() + 30
    while server_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_pids(marker) == []


# ------------------------------------------------------------------------------- vendor command lines
@pytest.mark.parametrize("engine", ["sglang"])  # vllm: tests/test_vllm.py; trtllm-serve: below
def test_vendor_command_lines_use_only_recorded_options(engine, tmp_path):
    ctx, knobs = ctx_for(
        engine,
        Path("/models/llama"),
        tmp_path,
        device=H100,
        knobs={"max_batch_size": 64, "max_num_tokens": 2048, "kv_cache_fraction": 0.85},
    )
    cmd = get_engine_class(engine).command(ctx, knobs, 8123, tmp_path / "w")
    used = recorded.flags(cmd)
    assert set(used) <= recorded.RECORDED[engine], set(used) - recorded.RECORDED[engine]
    assert "127.0.0.1" in cmd and "8123" in cmd and ("64" in cmd and "2048" in cmd and "0.85" in cmd)
    assert get_engine_class(engine).infeasible_reason(knobs, CPU, None) is not None


def test_trtllm_serve_yaml_and_metrics(tmp_path):
    """trtllm-serve runs trtllm's own translation: the same knobs, its flags and `--config` YAML checked
    against the recorded 1.2.1 facts, and the YAML the one `workbench export` writes (issue #20 item 1)."""
    from workbench.engines.trtllm import TrtllmEngine
    from workbench.engines.trtllm import args as TT
    from workbench.engines.trtllm.api import check_cli, check_kwargs, torch_snapshot

    serve = get_engine_class("trtllm-serve")
    assert serve.knobs == TrtllmEngine.knobs  # a study moves between in-process and server by `engine:`
    opts = {"startup_timeout_s": 900, "tensor_parallel_size": 1}
    ctx, knobs = ctx_for("trtllm-serve", Path("/m"), tmp_path, device=H100, options=opts)
    knobs = {**knobs, "max_batch_size": 64, "max_num_tokens": 2048, "kv_cache_fraction": 0.85}
    cmd = serve.command(ctx, knobs, 8000, tmp_path / "w")
    assert cmd[1:6] == ["/m", "--host", "127.0.0.1", "--port", "8000"]
    assert not check_cli("", cmd[2:], torch_snapshot(), tool="trtllm-serve"), cmd
    config = yaml.safe_load(Path(cmd[cmd.index("--config") + 1]).read_text())
    assert config == TT.serve_options(knobs, ctx.options, ctx.model_dtype, ctx.load_format)
    assert not check_kwargs("TorchLlmArgs", config, torch_snapshot())
    assert config["max_batch_size"] == 64 and config["kv_cache_config"]["free_gpu_memory_fraction"] == 0.85
    assert config["enable_iter_perf_stats"] is True  # the JSON /metrics needs it
    (tmp_path / "export").mkdir()
    files = serve(dataclasses.replace(ctx, study="s", trial_id="3")).export(knobs, tmp_path / "export")
    exported = yaml.safe_load(next(f for f in files if f.name == "config.yaml").read_text())
    assert exported == config
    assert serve.infeasible_reason(knobs, CPU, FeasibilityContext()) is not None
    body = json.dumps(
        [
            {
                "kvCacheStats": {"usedNumBlocks": 30, "maxNumBlocks": 120},
                "numActiveRequests": 7,
                "numQueuedRequests": 2,
                "inflightBatchingStats": {"numPausedRequests": 1},
            }
        ]
    ).encode()
    assert normalize(body, "trtllm-json") == {
        "kv_cache_usage": 0.25,
        "running": 7,
        "waiting": 2,
        "preemptions": 1,
        "prefix_cache_queries": None,
        "prefix_cache_hits": None,
    }


def test_prometheus_names_of_vllm_and_sglang():
    vllm = (
        b'# HELP x\nvllm:num_requests_running{model_name="m"} 5.0\nvllm:num_requests_waiting{model_name="m"} 2\n'
        b'vllm:kv_cache_usage_perc{model_name="m"} 0.5\nvllm:num_preemptions_total{model_name="m"} 3\n'
        b'vllm:prefix_cache_queries_total{model_name="m",engine="0"} 400\nvllm:prefix_cache_hits_total{engine="0"} 96\n'
    )
    assert normalize(vllm, "prometheus") == {
        "kv_cache_usage": 0.5,
        "running": 5,
        "waiting": 2,
        "preemptions": 3,
        "prefix_cache_queries": 400,
        "prefix_cache_hits": 96,
    }
    sg = b"sglang:num_running_reqs 4\nsglang:num_queue_reqs 1\nsglang:token_usage 0.75\n"
    assert normalize(sg, "prometheus") == {
        "kv_cache_usage": 0.75,
        "running": 4,
        "waiting": 1,
        "preemptions": None,
        "prefix_cache_queries": None,
        "prefix_cache_hits": None,
    }


def test_openai_options_need_a_port_placeholder():
    from workbench.engines.openai.engine import OpenAIOptions

    with pytest.raises(ValueError, match=r"\{port\}"):
        OpenAIOptions(command="my-server --port 8000")
    with pytest.raises(ValueError, match="exactly one"):
        OpenAIOptions()


# ------------------------------------------------------------------------- server metrics into MLflow
def test_server_metrics_reach_mlflow_as_step_series_and_a_figure(tiny_model, tmp_path):
    from mlflow import MlflowClient

    study = tmp_path / "s.yaml"
    study.write_text(
        json.dumps(
            {
                "name": "srvmetrics",
                "model": {"path": str(tiny_model)},
                "engine": "openai",
                "engine_options": {"command": TRIVIAL + " --delay-ms 20", "scrape_interval_s": 0.05},
                "search_space": {"max_batch_size": 4},
                "workload": {
                    "num_requests": 24,
                    "warmup_requests": 0,
                    "input_len": 4,
                    "output_len": 16,
                    "arrival": {"mode": "concurrency", "concurrency": 4},
                },
                "trial": {"device": "cpu", "timeout_s": 300},
                "budget": {"n_trials": 1},
            }
        )
    )
    uri = f"sqlite:///{tmp_path}/m.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKBENCH_HOME": str(tmp_path / "home"),
        "WORKBENCH_STORAGE": f"sqlite:///{tmp_path}/o.db",
        "MLFLOW_TRACKING_URI": uri,
        "WORKBENCH_FIGURE_PNG": "0",
    }
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "tune", str(study)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("srvmetrics")
    (run,) = client.search_runs([exp.experiment_id], filter_string="tags.`workbench.role` = 'trial'")
    rid = run.info.run_id
    running = client.get_metric_history(rid, "server.running")
    assert len(running) >= 5  # 24 requests x 16 tokens x 20 ms at concurrency 4: >= 2 s of 50 ms samples
    steps = [m.step for m in running]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # ms since the first request
    assert max(m.value for m in running) >= 1 and all(0 <= m.value <= 4 for m in running)
    assert max(m.value for m in client.get_metric_history(rid, "server.inflight")) >= 1
    ttft = client.get_metric_history(rid, "request.ttft_ms")
    assert len(ttft) == 24 and all(m.value > 0 for m in ttft)
    figs = [f.path for f in client.list_artifacts(rid, "trial/figures")]
    assert figs == ["trial/figures/server_timeline.html"]
    html = Path(
        client.download_artifacts(rid, "trial/figures/server_timeline.html", str(tmp_path))
    ).read_text()
    assert "KV-cache usage" in html and "TTFT" in html


# --------------------------------------------------------------------------------- AIPerf cross-check
AIPERF = os.environ.get("WORKBENCH_TEST_AIPERF") or shutil.which("aiperf")


def test_aiperf_command_line_replays_our_requests():
    from workbench.engines.server import aiperf

    cmd = aiperf.profile_command(
        "aiperf",
        "http://127.0.0.1:8123",
        "m",
        "tok",
        Path("/w/in.jsonl"),
        64,
        Path("/w/a"),
        concurrency=8,
        warmup=2,
        seed=0,
    )
    assert cmd[:2] == ["aiperf", "profile"] and "--streaming" in cmd and "--use-server-token-count" not in cmd
    for flag, value in (
        ("--url", "http://127.0.0.1:8123"),
        ("--endpoint-type", "completions"),
        ("--input-file", "/w/in.jsonl"),
        ("--custom-dataset-type", "single_turn"),
        ("--dataset-sampling-strategy", "sequential"),
        ("--concurrency", "8"),
        ("--request-count", "64"),
        ("--warmup-request-count", "2"),
        ("--random-seed", "0"),
        ("--tokenizer", "tok"),
        ("--artifact-dir", "/w/a"),
        ("--ui-type", "none"),
    ):
        assert cmd[cmd.index(flag) + 1] == value, flag
    assert "--isl" not in cmd and "--osl" not in cmd  # our prompts and lengths, not synthetic ones
    rate = aiperf.profile_command(
        "aiperf", "u", "m", "t", Path("i"), 8, Path("o"), rate=2.5, server_token_count=True
    )
    assert (
        rate[rate.index("--request-rate") + 1] == "2.5"
        and rate[rate.index("--arrival-pattern") + 1] == "poisson"
    )
    assert (
        "--concurrency" not in rate
        and "--warmup-request-count" not in rate
        and "--use-server-token-count" in rate
    )
    with pytest.raises(ValueError):
        aiperf.profile_command("aiperf", "u", "m", "t", Path("i"), 8, Path("o"))


def test_aiperf_input_lines_are_our_client_bodies(tmp_path):
    from workbench.engines.hf.transformers_serve import TransformersServeEngine
    from workbench.engines.server import aiperf

    extras = TransformersServeEngine.ignore_eos_payload(Request("r", [1, 2], 8, True))
    body = {
        "model": "m",
        "prompt": "a b c",
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extras,
    }
    line = aiperf.input_line(body)
    assert line == {"text": "a b c", "output_length": 8, "extra": {"temperature": 0, **extras}}
    # the exact output length, per request
    assert json.loads(line["extra"]["generation_config"])["max_new_tokens"] == 8
    assert aiperf.input_line({"prompt": "x", "max_tokens": 3}) == {"text": "x", "output_length": 3}
    with pytest.raises(ValueError, match="text prompts"):
        aiperf.input_line({"prompt": [1, 2], "max_tokens": 3})
    f = aiperf.write_input([body, body], tmp_path / "d" / "in.jsonl")
    assert [json.loads(x) for x in f.read_text().splitlines()] == [line, line]


def test_aiperf_load_and_environment(tmp_path):
    from types import SimpleNamespace as NS

    from workbench.engines.server import aiperf
    from workbench.spec.workload import WorkloadSpec

    def w(**kw):
        return WorkloadSpec.model_validate(kw)

    assert aiperf.load_of(w(), 16) == (16, None)  # a burst: every request at once
    assert aiperf.load_of(w(arrival={"mode": "concurrency", "concurrency": 4}), 16) == (4, None)
    assert aiperf.load_of(w(arrival={"mode": "rate", "rate": 2.0}), 16) == (None, 2.0)
    assert aiperf.load_of(w(sweep={"concurrency": [1, 4, 8]}), 16) == (8, None)  # the highest load stands
    assert aiperf.load_of(NS(sweep=w(sweep={"rate": [1.0, 3.0]}).sweep, arrival=None), 16) == (None, 3.0)
    env = aiperf.aiperf_env({"HF_HUB_OFFLINE": "1", "X": "y"}, str(tmp_path))
    assert "HF_HUB_OFFLINE" not in env and env["X"] == "y"  # AIPerf 0.13 fails on a local folder offline
    assert aiperf.aiperf_env({"HF_HUB_OFFLINE": "1"}, "org/name")["HF_HUB_OFFLINE"] == "1"


def test_aiperf_real_export_parsed():
    """tests/data/profile_export_aiperf.json: a real AIPerf 0.13.0 export (warmup block cut) of the run in
    docs/benchmarks.md (studies/serving-aiperf.yaml, 128 requests at concurrency 8, 4 of them without text)."""
    from workbench.engines.server import aiperf

    data = json.loads((ROOT / "tests/data/profile_export_aiperf.json").read_text())
    assert data["aiperf_version"] == "0.13.0" and data["input_config"]["endpoint"]["type"] == "completions"
    theirs = aiperf.parse_export(data)
    assert theirs["output_tok_s"] == pytest.approx(1172.426, abs=1e-3)
    assert theirs["request_per_s"] == pytest.approx(18.333, abs=1e-3)
    assert theirs["ttft_ms_p95"] == pytest.approx(73.145, abs=1e-3)
    assert theirs["tpot_ms_p50"] == pytest.approx(5.978, abs=1e-3)  # inter_token_latency: per request
    assert theirs["itl_ms_p50"] == pytest.approx(5.299, abs=1e-3)  # inter_chunk_latency: every gap
    assert theirs["e2e_ms_p50"] == pytest.approx(405.747, abs=1e-3)
    assert theirs["duration_s"] == pytest.approx(6.7586, abs=1e-4)
    assert (theirs["num_requests"], theirs["num_errors"]) == (124.0, 4.0)  # errors are not in request_count
    # tokens of the successful requests over the profiling window (a hair longer than benchmark_duration)
    assert theirs["output_tok_s"] * theirs["duration_s"] == pytest.approx(data["total_osl"]["avg"], rel=2e-3)
    assert aiperf.parse_export({"records": data}) == theirs  # the nested form of some versions
    from workbench.engines.comparison import compare_metrics

    comp = compare_metrics({"output_tok_s": 1172.426 / 2}, theirs)  # every tool's ratio: theirs / ours
    assert comp["output_tok_s"].ratio == pytest.approx(2.0) and comp["ttft_ms_p95"].ratio is None
    assert get_engine_class("transformers-serve").crosscheck_tool == "aiperf"


def test_a_random_weight_server_needs_a_tokenizer_covering_its_vocabulary(tiny_model, tmp_path):
    """Ids past the tokenizer's end stream no text: the trial fails at once, naming the fix."""
    from workbench.engines.server.runner import check_stream_tokenizer
    from workbench.tiny_model import make_shape_tokenizer

    shape = ROOT / "studies" / "shapes" / "llama-3.1-8b"
    ctx = OpenContext(model_source=str(shape), device=CPU, tokenizer=str(tiny_model), load_format="dummy")
    with pytest.raises(ServerError, match=r"128,256 tokens.*1,024: 99\.2% .*make-shape-tokenizer"):
        check_stream_tokenizer(ctx, 1024)
    full = make_shape_tokenizer(shape, tmp_path / "tok")
    check_stream_tokenizer(dataclasses.replace(ctx, tokenizer=str(full)), 128_256)
    check_stream_tokenizer(
        OpenContext(model_source=str(tiny_model), device=CPU), 10
    )  # trained weights: no check


def test_stream_check_warns_when_chunks_hold_several_tokens():
    from workbench.trials.worker.bench import stream_check

    assert stream_check({"completion_tokens": 128, "text_chunks": 128}) == {
        "completion_tokens": 128,
        "text_chunks": 128,
        "tokens_per_chunk": 1.0,
    }
    chunky = stream_check({"completion_tokens": 128, "text_chunks": 2})
    assert chunky["tokens_per_chunk"] == 64.0 and "time chunks, not tokens" in chunky["warning"]
    assert stream_check({"completion_tokens": 0, "text_chunks": 0}) == {
        "completion_tokens": 0,
        "text_chunks": 0,
    }


def test_a_sweep_cut_by_the_deadline_keeps_the_loads_it_measured():
    """The H200 server sweep ran out of time at its last load; its eight measured loads must not vanish."""
    from types import SimpleNamespace

    from workbench.spec import WorkloadSpec
    from workbench.trials.worker.sweep import run_sweep
    from workbench.types import RequestRecord

    w = WorkloadSpec.model_validate(
        {"num_requests": 2, "input_len": 4, "output_len": 2, "sweep": {"concurrency": [1, 2, 4]}}
    )

    def drive(runner, reqs, offsets, conc, deadline):
        if conc == 4:
            raise TimeoutError("benchmark deadline reached with 2 of 2 requests unfinished")
        return [
            RequestRecord(id=r.id, input_len=4, arrival=0.0, token_times=[0.1, 0.2], finish=0.2) for r in reqs
        ]

    def make(wl, i, load):
        return [Request(f"{i}-{j}", [5, 6, 7, 8], 2) for j in range(2)]

    plan = SimpleNamespace(workload=w, slo=None)
    with pytest.raises(TimeoutError) as e:
        run_sweep(None, plan, make, drive, lambda wl, n, seed: None, deadline=None)
    part = e.value.partial_sweep
    assert part["cut_at_load"] == 4.0 and [p["load"] for p in part["points"]] == [1.0, 2.0]
    assert part["points"][1]["output_tok_s"] == pytest.approx(20.0)  # 4 tokens in 0.2 s


def test_a_sweep_measures_energy_per_load_and_the_top_load_stands_for_the_trial():
    """Issue #20: energy per token for sweeps. Each load gets its own NVML window (here a stand-in
    counting 2 J per load); the trial's `energy` block is the top load's, like its throughput."""
    from types import SimpleNamespace

    from workbench import metric_registry as R
    from workbench.spec import WorkloadSpec
    from workbench.trials.worker.sweep import run_sweep
    from workbench.types import RequestRecord

    class Meter:  # EnergyMeter's interface: start(), block(output_tokens)
        def __init__(self):
            self.mj = 0

        def start(self):
            self.mj = 0

        def block(self, output_tokens):
            self.mj += 2000
            return {"joules": self.mj / 1000.0, "output_tokens": output_tokens, "source": "stand-in"}

    w = WorkloadSpec.model_validate(
        {"num_requests": 2, "input_len": 4, "output_len": 2, "sweep": {"concurrency": [1, 2]}}
    )

    def drive(runner, reqs, offsets, conc, deadline):
        return [
            RequestRecord(id=r.id, input_len=4, arrival=0.0, token_times=[0.1, 0.2], finish=0.2) for r in reqs
        ]

    def make(wl, i, load):
        return [Request(f"{i}-{j}", [5, 6, 7, 8], 2) for j in range(2 * (i + 1))]

    plan = SimpleNamespace(workload=w, slo=None)
    sw = run_sweep(None, plan, make, drive, lambda wl, n, seed: None, deadline=None, meter=Meter())
    assert [p["energy_j"] for p in sw["points"]] == [2.0, 2.0]
    assert [p["energy_j_per_output_token"] for p in sw["points"]] == [0.5, 0.25]  # 4 and 8 tokens
    assert sw["energy"]["output_tokens"] == 8
    assert R.derive(R.DeriveInput({}, {"energy": sw["energy"]}))["energy_j_per_output_token"] == 0.25
    assert "energy" not in run_sweep(None, plan, make, drive, lambda wl, n, seed: None, deadline=None)


def _trivial_sweep_trial(tiny_model, tmp_path, command, sweep):
    from tests.conftest import small_study
    from workbench.spec import StudySpec
    from workbench.trials.orchestrator.run import run_trial

    data = small_study(tiny_model, engine="openai")
    data["engine_options"] = {"command": command}
    data["search_space"] = {"max_batch_size": 4}
    data["workload"] = {
        "num_requests": 50,
        "warmup_requests": 0,
        "input_len": 4,
        "output_len": 8,
        "sweep": sweep,
    }
    data["trial"] = {**data.get("trial", {}), "device": "cpu", "timeout_s": 300}
    res = run_trial(StudySpec.model_validate(data), out_dir=tmp_path / "t")
    assert res.status == "COMPLETE", res.failure
    return res


def test_sweep_points_run_requests_per_load_times_load(tiny_model, tmp_path):
    """Issue 19: each point runs max(min_requests, ceil(R x load)), not num_requests (50) at every load."""
    res = _trivial_sweep_trial(
        tiny_model, tmp_path, TRIVIAL, {"concurrency": [1, 2, 4], "requests_per_load": 3, "min_requests": 4}
    )
    points = res.bench["sweep"]["points"]
    assert [(p["load"], p["num_requests"]) for p in points] == [(1.0, 4), (2.0, 6), (4.0, 12)]
    assert all(p["duration_s"] > 0 for p in points)
    ids = [r["id"] for r in res.bench["requests"]]
    assert len(ids) == 22 and sum(i.startswith("load2-") for i in ids) == 12
    assert "num_requests" not in res.metrics  # the trial's flat metrics are as before


def test_a_time_budgeted_sweep_point_stops_issuing(tiny_model, tmp_path):
    """`duration_s`: a point issues requests only for that long (here ~0.16 s a request, one at a time), so it
    runs far fewer than its list of requests_per_load x load (1000, 2000), and reports how many it ran."""
    res = _trivial_sweep_trial(
        tiny_model,
        tmp_path,
        TRIVIAL + " --delay-ms 20",
        {"concurrency": [1, 2], "requests_per_load": 1000, "min_requests": 2, "duration_s": 0.5},
    )
    points = res.bench["sweep"]["points"]
    assert [p["load"] for p in points] == [1.0, 2.0]
    assert 2 <= points[0]["num_requests"] < 1000 and 2 <= points[1]["num_requests"] < 2000
    assert sum(p["num_requests"] for p in points) == len(res.bench["requests"])
    assert all(p["duration_s"] > 0 for p in points)
    first = [r["id"] for r in res.bench["requests"] if r["id"].startswith("load0-")]
    assert first == [f"load0-{i}" for i in range(points[0]["num_requests"])]  # a prefix of its sequence


@pytest.mark.slow
@pytest.mark.skipif(
    AIPERF is None,
    reason="no aiperf executable (PATH or WORKBENCH_TEST_AIPERF): AIPerf lives "
    "in its own environment, not in CI",
)
def test_aiperf_crosscheck_for_real(tiny_model, tmp_path):
    from mlflow import MlflowClient

    study = tmp_path / "s.yaml"
    study.write_text(
        json.dumps(
            {
                "name": "aiperfcheck",
                "model": {"path": str(tiny_model), "dtype": "float32"},
                "engine": "transformers-serve",
                "engine_options": {"aiperf": AIPERF, "threads": 1},
                "search_space": {"page_size": 16, "max_num_tokens": 128},
                "workload": {
                    "num_requests": 12,
                    "warmup_requests": 1,
                    "input_len": 16,
                    "output_len": 8,
                    "arrival": {"mode": "concurrency", "concurrency": 3},
                },
                "trial": {"device": "cpu", "timeout_s": 300, "cpu_kv_budget_gb": 0.01},
                "budget": {"n_trials": 1},
            }
        )
    )
    uri = f"sqlite:///{tmp_path}/m.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WORKBENCH_HOME": str(tmp_path / "home"),
        "WORKBENCH_STORAGE": f"sqlite:///{tmp_path}/o.db",
        "MLFLOW_TRACKING_URI": uri,
        "WORKBENCH_FIGURE_PNG": "0",
    }
    for args in (
        ["tune", str(study)],
        ["crosscheck", "aiperfcheck", "--trial", "0", "--out", str(tmp_path / "cc")],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "workbench.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    assert "tpot_ms_p50" in out.stdout and "--endpoint-type completions" in out.stdout
    comp = json.loads((tmp_path / "cc" / "comparison.json").read_text())
    theirs = comp["their_metrics"]
    assert theirs["output_tok_s"] > 0 and theirs["num_requests"] + theirs.get("num_errors", 0) == 12
    lines = [json.loads(x) for x in (tmp_path / "cc" / "aiperf_input.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(
        x["output_length"] == 8 and "generation_config" in x["extra"] for x in lines
    )
    client = MlflowClient(tracking_uri=uri)
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("aiperfcheck").experiment_id])
        if r.data.tags.get("crosscheck.tool")
    ]
    assert run.data.tags["crosscheck.tool"] == "aiperf" and run.data.metrics["aiperf.output_tok_s"] > 0
    assert "aiperf_ratio.output_tok_s" in run.data.metrics
