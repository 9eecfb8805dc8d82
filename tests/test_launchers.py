"""Trial workers started in other environments: a second virtual environment, and container command lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import small_study
from workbench.spec import ContainerSpec, validate_spec
from workbench.trials.orchestrator.launchers import (
    CONTAINER_SOURCE,
    ContainerLauncher,
    PythonLauncher,
    WorkerCall,
    launcher_for,
    source_root,
)
from workbench.trials.orchestrator.run import run_trial

#: what the worker side must never import (lm_eval only when a trial measures accuracy)
FORBIDDEN = {"optuna", "mlflow", "plotly", "pandas", "lm_eval"}
#: the second environment holds these and what they need, nothing else (torchao: the hf engine declares it)
SECOND_ENV = ("pydantic", "PyYAML", "torch", "transformers", "torchao")


def _closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions `names` need (their requirement closure, without extras)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        key = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if key in seen:
            continue
        dist = metadata.distribution(key)
        seen[key] = dist
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def make_second_env(where: Path) -> Path:
    """A virtual environment at another path holding only SECOND_ENV and their requirements, made
    without the network: its site-packages links to the top-level entries of those distributions."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    py = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for dist in _closure(SECOND_ENV):
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src, dst = base / top, site / top
            if src.exists() and not dst.exists():
                dst.symlink_to(src)
    return py


@pytest.fixture(scope="module")
def second_python(tmp_path_factory) -> Path:
    return make_second_env(tmp_path_factory.mktemp("second-env") / "venv")


def _spec(tiny_model: Path, **runtime):
    data = small_study(tiny_model, **{"workload.num_requests": 4})
    if runtime:
        data["runtime"] = runtime
    return validate_spec(data)


def test_the_same_trial_in_a_second_environment(tiny_model, second_python, tmp_path):
    knobs = {"max_batch_size": 4, "quantization": "none", "kv_cache_fraction": 0.5}
    here = run_trial(_spec(tiny_model), knobs, out_dir=tmp_path / "here")
    there = run_trial(_spec(tiny_model, python=str(second_python)), knobs, out_dir=tmp_path / "there")
    for res in (here, there):
        assert res.status == "COMPLETE", res.failure
        imported = set(res.environment["worker"]["imported"])
        assert "torch" in imported and not (imported & FORBIDDEN), imported & FORBIDDEN
        assert res.metrics["peak_memory_gb"] > 0 and res.bench["memory"]["source"] == "process_rss"
        assert set(res.bench["memory"]["phase_peak_above_baseline_bytes"]) >= {"build", "load", "benchmark"}
    # the worker really ran under the other interpreter, and the result says how it was started
    assert there.environment["worker"]["python_executable"] == str(second_python)
    assert here.environment["worker"]["python_executable"] == sys.executable
    assert there.environment["launcher"] == {
        "kind": "python",
        "python": str(second_python),
        "command": [
            str(second_python),
            "-m",
            "workbench.trials.worker",
            str(tmp_path / "there" / "plan.json"),
            str(tmp_path / "there" / "result.json"),
        ],
    }
    assert here.environment["launcher"]["kind"] == "local"
    # deterministic outputs are the same in both environments
    assert [r["output_len"] for r in here.bench["requests"]] == [
        r["output_len"] for r in there.bench["requests"]
    ]
    assert here.metrics["kv_cache_tokens"] == there.metrics["kv_cache_tokens"] > 0
    assert set(here.metrics) == set(there.metrics)
    assert here.engine_config["kv_cache_tokens"] == there.engine_config["kv_cache_tokens"]
    # the second environment holds no orchestrator package
    p = subprocess.run([str(second_python), "-c", "import optuna"], capture_output=True, text=True)
    assert p.returncode != 0 and "No module named 'optuna'" in p.stderr
    # its package versions are probed in that interpreter (the build key hashes the worker's versions)
    assert PythonLauncher(str(second_python)).package_versions(("torch", "optuna")) == {
        "torch": metadata.version("torch")
    }


def _call(kind: str = "cuda") -> WorkerCall:
    return WorkerCall(
        plan_path=Path("/runs/t1/plan.json"),
        result_path=Path("/runs/t1/result.json"),
        name="workbench-s-t1-42",
        writable=[Path("/runs/t1"), Path("/cache")],
        readable=[Path("/models/llama")],
        env={"PYTHONUNBUFFERED": "1"},
        device_kind=kind,
        device_index=3,
        threads=8,
        memory_limit_gb=2.0,
    )


WORKER = ["-m", "workbench.trials.worker", "/runs/t1/plan.json", "/runs/t1/result.json"]


def _mounts(flag: str) -> list[str]:
    out = [flag, f"{source_root() / 'workbench'}:{CONTAINER_SOURCE}/workbench:ro"]
    for p, mode in (("/runs/t1", "rw"), ("/cache", "rw"), ("/models/llama", "ro")):
        out += [flag, f"{p}:{p}:{mode}"]
    return out


def _env(flag: str, **extra: str) -> list[str]:
    env = {
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "8",
        "PYTHONPATH": CONTAINER_SOURCE,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return [x for k in sorted(env) for x in (flag, f"{k}={env[k]}")]


def test_docker_command_line():
    spec = ContainerSpec(image="nvcr.io/nvidia/tensorrt-llm/release:1.2.1", args=["--shm-size=8g"])
    cmd = ContainerLauncher(spec).command(_call())
    assert cmd == [
        "docker",
        "run",
        "--rm",
        "--name",
        "workbench-s-t1-42",
        "--ipc=host",
        "--init",
        "--network",
        "none",
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--gpus",
        "device=3",
        "--cpus",
        "8",
        "--memory",
        f"{2 * 1024**3}b",
        *_mounts("-v"),
        *_env("-e"),
        "--shm-size=8g",
        "nvcr.io/nvidia/tensorrt-llm/release:1.2.1",
        "python3",
        *WORKER,
    ]


def test_podman_command_line_uses_cdi_and_keeps_a_given_network():
    spec = ContainerSpec(
        image="localhost/vllm:0.11",
        runtime="podman",
        python="/opt/venv/bin/python",
        args=["--network", "host"],
    )
    cmd = ContainerLauncher(spec).command(_call())
    assert cmd == [
        "podman",
        "run",
        "--rm",
        "--name",
        "workbench-s-t1-42",
        "--ipc=host",
        "--init",
        "--userns=keep-id",
        "--device",
        "nvidia.com/gpu=3",
        "--cpus",
        "8",
        "--memory",
        f"{2 * 1024**3}b",
        *_mounts("-v"),
        *_env("-e"),
        "--network",
        "host",
        "localhost/vllm:0.11",
        "/opt/venv/bin/python",
        *WORKER,
    ]


def test_apptainer_command_line_and_cpu_containers_get_no_gpu():
    spec = ContainerSpec(image="/images/trtllm.sif", runtime="apptainer")
    cmd = ContainerLauncher(spec).command(_call())
    assert cmd == [
        "apptainer",
        "exec",
        "--cleanenv",
        "--containall",
        "--no-home",
        "--nv",
        *_mounts("--bind"),
        *_env("--env", CUDA_VISIBLE_DEVICES="3"),
        "/images/trtllm.sif",
        "python3",
        *WORKER,
    ]
    cpu = ContainerLauncher(ContainerSpec(image="img")).command(_call("cpu"))
    assert "--gpus" not in cpu and "--nv" not in ContainerLauncher(spec).command(_call("cpu"))


def test_launcher_follows_the_studys_runtime(tiny_model):
    assert launcher_for(_spec(tiny_model).runtime).kind == "local"
    assert launcher_for(_spec(tiny_model, python="/x/bin/python").runtime).python == "/x/bin/python"
    rt = _spec(tiny_model, container={"image": "img", "runtime": "podman"}).runtime
    assert launcher_for(rt).kind == "container" and launcher_for(rt).runtime == "podman"


def _engine_runs(runtime: str) -> str | None:
    """Why `runtime` cannot run a container here, or None when it can."""
    if shutil.which(runtime) is None:
        return f"no {runtime} client on this machine"
    p = subprocess.run([runtime, "info"], capture_output=True, text=True, timeout=30)
    return None if p.returncode == 0 else f"{runtime} has no container engine here: {p.stderr.strip()[:200]}"


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_container_worker_runs_where_a_runtime_exists(runtime, tiny_model, tmp_path):
    """Needs an image holding the worker's needs (pydantic, PyYAML, torch, transformers): WORKBENCH_TEST_IMAGE."""
    why = _engine_runs(runtime)
    image = os.environ.get("WORKBENCH_TEST_IMAGE")
    if why or not image:
        pytest.skip(
            why or "set WORKBENCH_TEST_IMAGE to an image with python, pydantic, PyYAML, torch, transformers"
        )
    spec = _spec(tiny_model, container={"image": image, "runtime": runtime, "gpus": False})
    res = run_trial(spec, {"quantization": "none"}, out_dir=tmp_path / "c")
    assert res.status == "COMPLETE", res.failure
    assert res.environment["launcher"]["command"][:2] == [runtime, "run"]
