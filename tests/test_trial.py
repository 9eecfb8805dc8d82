"""One trial end to end in a worker subprocess, and every way a trial can fail being recorded with its cause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.conftest import ROOT, scaled, small_study
from workbench.spec import validate_spec
from workbench.trials.orchestrator.run import run_trial
from workbench.trials.result import TrialResult

WB = [sys.executable, "-m", "workbench.cli"]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WB, *args], capture_output=True, text=True, timeout=scaled(timeout), cwd=ROOT, env=os.environ
    )


def test_cli_trial_end_to_end(write_study, tmp_path):
    study = write_study(**{"trial.cache_dir": str(tmp_path / "cache")})  # a cache no other test has filled
    out = tmp_path / "run"
    p = _cli(
        "trial", str(study), "--set", "max_batch_size=4", "--set", "quantization=int8", "--out", str(out)
    )
    assert p.returncode == 0, p.stderr + p.stdout
    assert "status                      COMPLETE" in p.stdout
    assert f"result                      {out / 'result.json'}" in p.stdout
    res = TrialResult.read(out / "result.json")
    assert res.status == "COMPLETE" and res.failure is None
    assert res.knobs["max_batch_size"] == 4 and res.knobs["quantization"] == "int8"
    assert res.knobs["max_num_tokens"] == 256 and res.knobs["page_size"] == 16  # baseline and fixed knobs
    assert res.build["build_key"] and res.build["cache_hit"] is False and res.build["build_s"] > 0
    assert res.engine_config["max_requests_per_batch"] == 4
    bench = res.bench
    assert bench["schema"] == "workbench.bench_report" and bench["schema_version"] == 1
    # every measured request produced exactly output_len tokens (EOS ignored)
    assert len(bench["requests"]) == 8 and all(r["output_len"] == 8 for r in bench["requests"])
    # flat metrics agree with the report blocks and with the raw timings
    tokens = sum(r["output_len"] for r in bench["requests"])
    span = max(r["token_times_s"][-1] for r in bench["requests"]) - min(
        r["arrival_s"] for r in bench["requests"]
    )
    assert res.metrics["output_tok_s"] == pytest.approx(tokens / span, rel=1e-3)
    assert res.metrics["output_tok_s"] == pytest.approx(
        bench["performance"]["system_output_throughput_tok_s"]
    )
    assert res.metrics["ttft_ms_p95"] >= res.metrics["ttft_ms_p50"] > 0
    assert 0 < res.metrics["peak_memory_gb"] < 4 and bench["memory"]["source"] == "process_rss"
    assert res.metrics["kv_cache_tokens"] == res.engine_config["kv_cache_tokens"] > 0
    assert bench["world_info"]["max_batch_size"] == 4
    assert res.environment["packages"]["transformers"] and "commit" in res.environment["git"]
    assert (out / "plan.json").exists() and (out / "worker.log").exists()

    # same build key again: taken from the cache, not rebuilt
    p2 = _cli("trial", str(study), "--set", "quantization=int8", "--out", str(tmp_path / "run2"))
    assert p2.returncode == 0, p2.stderr
    res2 = TrialResult.read(tmp_path / "run2" / "result.json")
    assert res2.build["cache_hit"] is True and res2.build["build_key"] == res.build["build_key"]
    assert res2.metrics["build_s"] == 0.0


def test_orchestrator_imports_no_torch(write_study):
    study = write_study(**{"workload.num_requests": 2})
    code = (
        "import sys; from workbench.cli import main\n"
        f"rc = main(['trial', {str(study)!r}])\n"
        "heavy = [m for m in ('torch', 'transformers', 'torchao', 'tensorrt_llm') if m in sys.modules]\n"
        "print('HEAVY', heavy, rc)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=scaled(600), cwd=ROOT
    )
    assert "HEAVY [] 0" in p.stdout, p.stdout + p.stderr


def test_infeasible_is_reported_before_any_work(write_study, tmp_path):
    out = tmp_path / "inf"
    p = _cli("trial", str(write_study()), "--set", "quantization=int4", "--out", str(out))
    assert p.returncode == 3
    assert "INFEASIBLE" in p.stdout and "int4" in p.stdout and "needs a CUDA GPU" in p.stdout
    res = TrialResult.read(out / "result.json")
    assert res.failure.kind == "infeasible" and not (out / "plan.json").exists()


def test_bad_set_value_is_a_usage_error(write_study):
    p = _cli("trial", str(write_study()), "--set", "kv_cache_fraction=1.5")
    assert p.returncode == 2
    assert "1.5 is not allowed for kv_cache_fraction: must be a number > 0.0 and <= 1.0" in p.stderr


def test_kv_cache_smaller_than_a_request_fails_with_cause(tiny_model):
    spec = validate_spec(small_study(tiny_model))
    # 0.001 x 10 MiB of KV at 2 KiB a token: one 16-token block, far below a 48-token request
    res = run_trial(spec, {"kv_cache_fraction": 0.001})
    assert res.status == "FAILED" and res.failure.kind == "engine_error"
    assert "requests failed inside the engine" in res.failure.message
    assert "the KV cache holds 16 tokens, less than one request" in res.failure.message


def test_timeout_kills_only_the_trial(tiny_model):
    """A workload far beyond 1.5 s on any machine (100,000 requests): the trial returns only because its
    worker was killed at the limit, so no wall-clock bound is needed (it used to assert < 20 s)."""
    changes = {"trial.timeout_s": 1.5, "workload.num_requests": 100_000, "workload.output_len": 64}
    spec = validate_spec(small_study(tiny_model, **changes))
    res = run_trial(spec)
    assert res.status == "FAILED" and res.failure.kind == "timeout"
    assert "trial.timeout_s=1.5" in res.failure.message


def test_memory_limit_is_out_of_memory(tiny_model):
    spec = validate_spec(small_study(tiny_model, **{"trial.memory_limit_gb": 0.05}))
    res = run_trial(spec)
    assert res.status == "FAILED" and res.failure.kind == "oom"
    assert "over trial.memory_limit_gb=0.05" in res.failure.message


def test_killed_worker_is_recorded(tiny_model):
    spec = validate_spec(small_study(tiny_model, **{"workload.num_requests": 400}))
    box: dict = {}
    th = threading.Thread(target=lambda: box.setdefault("res", run_trial(spec)))
    me = psutil.Process()
    th.start()
    worker = None
    for _ in range(200):
        kids = [c for c in me.children(recursive=True) if "workbench.trials.worker" in " ".join(c.cmdline())]
        if kids:
            worker = kids[0]
            break
        time.sleep(0.05)
    assert worker is not None
    time.sleep(3)  # let it get into the work
    os.kill(worker.pid, signal.SIGKILL)
    th.join(60)
    res = box["res"]
    assert res.status == "FAILED" and res.failure.kind == "crash"
    assert "killed by SIGKILL" in res.failure.message


def test_repeats_and_concurrency(tiny_model):
    spec = validate_spec(
        small_study(
            tiny_model,
            **{
                "workload.repeats": 2,
                "workload.arrival": {"mode": "concurrency", "concurrency": 2},
                "workload.num_requests": 6,
            },
        )
    )
    res = run_trial(spec)
    assert res.status == "COMPLETE", res.failure
    rep = res.bench["repeats"]
    assert rep["n"] == 2 and len(rep["runs"]) == 2
    assert res.metrics["output_tok_s"] == pytest.approx(sum(r["output_tok_s"] for r in rep["runs"]) / 2)
    assert res.metrics["output_tok_s_cv"] >= 0
    # never more than 2 requests in flight
    reqs = res.bench["requests"]
    for r in reqs:
        t = r["arrival_s"] + 1e-6
        in_flight = sum(1 for q in reqs if q["arrival_s"] <= t < q["token_times_s"][-1])
        assert in_flight <= 2


def test_rate_arrivals_are_spread(tiny_model):
    spec = validate_spec(small_study(tiny_model, **{"workload.arrival": {"mode": "rate", "rate": 20.0}}))
    res = run_trial(spec)
    assert res.status == "COMPLETE", res.failure
    arrivals = sorted(r["arrival_s"] for r in res.bench["requests"])
    assert arrivals[-1] > 0.05 and res.bench["world_info"]["issue_rate"] == 20.0


def test_quickstart_validates_via_cli(project_tiny_model):
    p = _cli("validate", "studies/quickstart.yaml")
    assert (
        p.returncode == 0 and "quantization             build-time choices none, int8, int4_intx" in p.stdout
    )


def test_help_is_light():
    code = "import sys; from workbench.cli import build_parser; build_parser().format_help(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch','pydantic','yaml','transformers')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert p.stdout.strip() == "[]"


def test_small_kv_cache_preempts_but_keeps_every_token_time(tiny_model):
    # about 96 KV tokens for 8 requests of up to 48 tokens: requests are preempted and restarted
    spec = validate_spec(small_study(tiny_model, **{"workload.num_requests": 8}))
    res = run_trial(spec, {"kv_cache_fraction": 0.02})
    assert res.status == "COMPLETE", res.failure
    assert res.engine_config["kv_cache_tokens"] == 96
    for r in res.bench["requests"]:
        t = r["token_times_s"]
        assert r["output_len"] == len(t) == 8 and t == sorted(t) and t[0] >= r["arrival_s"]


def test_a_cuda_study_on_a_host_without_a_gpu_is_one_message_and_exit_2(project_tiny_model, tmp_path):
    """trial.device: cuda where NVML finds no GPU ended in a DeviceError traceback; it is bad input for
    this machine (exit 2, one line), from `trial` and from `tune`, and the error is a WorkbenchError."""
    from workbench.trials.orchestrator.environment import DeviceError, detect_device
    from workbench.types import InputError

    try:
        detect_device("cuda")
        pytest.skip("this machine has an NVIDIA GPU")
    except DeviceError as e:
        assert isinstance(e, InputError) and "trial.device: auto or cpu" in str(e)
    study = str(ROOT / "studies" / "quickstart.yaml")
    for cmd in (
        ["trial", study, "--set", "trial.device=cuda", "--out", str(tmp_path / "t")],
        [
            "tune",
            study,
            "--set",
            "trial.device=cuda",
            "--n-trials",
            "1",
            "--tracking-uri",
            "none",
            "--storage",
            f"sqlite:///{tmp_path / 's.db'}",
        ],
    ):
        r = subprocess.run([sys.executable, "-m", "workbench.cli", *cmd], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert errors == [
            "error: trial.device is 'cuda' but NVML finds no NVIDIA GPU on this machine "
            "(set trial.device: auto or cpu, or run the study on a GPU host)"
        ], r.stderr
