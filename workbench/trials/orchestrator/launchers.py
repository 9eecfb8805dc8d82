"""Where the trial worker runs: this interpreter, another environment's interpreter, or a container.

Engines pin their own torch (TensorRT-LLM, vLLM, SGLang), so the workbench cannot share an interpreter
with them. A launcher turns "run the worker on PLAN, write RESULT" into a command line for the
engine's environment (`runtime:` in the study) and knows how to find and kill what it started.
The worker needs only the standard library, pydantic, PyYAML and the workbench source, which the
launcher puts on PYTHONPATH (or mounts read-only into a container). The command line is recorded in
the trial's result, so a number can be traced to the environment that produced it.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from workbench.spec import ContainerSpec, RuntimeSpec

WORKER_MODULE = "workbench.trials.worker"
#: where the workbench source is mounted inside a container (read-only)
CONTAINER_SOURCE = "/opt/workbench-src"
#: run with the target interpreter: the versions of the packages named in argv, as JSON (stdlib only)
PROBE = (
    "import json, sys\nfrom importlib import metadata\nout = {}\nfor n in sys.argv[1:]:\n"
    "    try:\n        out[n] = metadata.version(n)\n    except Exception:\n        pass\n"
    "print(json.dumps({'python': sys.executable, 'packages': out}))"
)


def source_root() -> Path:
    """The folder holding the `workbench` package (what PYTHONPATH needs)."""
    return Path(__file__).resolve().parents[3]  # workbench/trials/orchestrator/launchers.py


@dataclass
class WorkerCall:
    """One worker process to start: its files, the folders it reads and writes, its environment."""

    plan_path: Path
    result_path: Path
    name: str
    writable: list[Path] = field(default_factory=list)
    readable: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    device_kind: str = "cpu"
    device_index: int | None = None
    threads: int | None = None
    memory_limit_gb: float | None = None

    def worker_args(self) -> list[str]:
        return ["-m", WORKER_MODULE, str(self.plan_path), str(self.result_path)]


class Launcher(abc.ABC):
    """How a worker is started in an engine's environment, found while it runs, and killed."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def command(self, call: WorkerCall) -> list[str]:
        """The full command line that runs the worker."""

    @abc.abstractmethod
    def probe_command(self) -> list[str]:
        """A command prefix that runs `python -c CODE ARGS...` in the worker's environment."""

    def process_env(self, call: WorkerCall) -> dict[str, str]:
        """The environment of the process this machine starts."""
        return {**os.environ, **call.env}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def package_versions(self, names: tuple[str, ...]) -> dict[str, str]:
        """Versions of `names` in the worker's environment, probed once per launcher and cached."""
        return dict(_probe(tuple(self.probe_command()), tuple(sorted(set(names))))["packages"])

    def watched_pids(self, proc: subprocess.Popen[bytes], call: WorkerCall) -> list[int]:
        """The processes whose memory is the trial's (with their children)."""
        return [proc.pid]

    def kill(self, proc: subprocess.Popen[bytes], call: WorkerCall) -> None:
        """Kill the worker and everything it started (its process group); wait for it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@lru_cache(maxsize=32)
def _probe(prefix: tuple[str, ...], names: tuple[str, ...]) -> dict[str, Any]:
    p = subprocess.run([*prefix, PROBE, *names], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(
            f"cannot run the worker's interpreter ({' '.join(prefix[:-1])}): {p.stderr[-2000:]}"
        )
    return json.loads(p.stdout.strip().splitlines()[-1])


class LocalLauncher(Launcher):
    """The workbench's own interpreter (the default)."""

    kind = "local"

    def command(self, call: WorkerCall) -> list[str]:
        return [sys.executable, *call.worker_args()]

    def probe_command(self) -> list[str]:
        return [sys.executable, "-c"]

    def package_versions(self, names: tuple[str, ...]) -> dict[str, str]:
        out = {}
        for n in names:  # the same interpreter: no process to start
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[n] = metadata.version(n)
        return out


class PythonLauncher(Launcher):
    """Another environment's interpreter (`runtime: {python: /opt/trtllm/bin/python}`)."""

    kind = "python"

    def __init__(self, python: str) -> None:
        self.python = str(Path(python).expanduser())

    def command(self, call: WorkerCall) -> list[str]:
        return [self.python, *call.worker_args()]

    def probe_command(self) -> list[str]:
        return [self.python, "-c"]

    def process_env(self, call: WorkerCall) -> dict[str, str]:
        env = super().process_env(call)
        env.pop("PYTHONHOME", None)
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source_root()), env.get("PYTHONPATH")) if p)
        return env

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "python": self.python}


class ContainerLauncher(Launcher):
    """A container image holding the engine's environment: docker, podman or apptainer."""

    kind = "container"

    def __init__(self, spec: ContainerSpec) -> None:
        self.spec = spec

    @property
    def runtime(self) -> str:
        return self.spec.runtime

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "runtime": self.runtime, "image": self.spec.image}

    def probe_command(self) -> list[str]:
        if self.runtime == "apptainer":
            return ["apptainer", "exec", self.spec.image, self.spec.python, "-c"]
        return [self.runtime, "run", "--rm", "--network", "none", self.spec.image, self.spec.python, "-c"]

    def process_env(self, call: WorkerCall) -> dict[str, str]:
        return dict(os.environ)  # the worker's own variables travel as --env flags

    def command(self, call: WorkerCall) -> list[str]:
        if self.runtime == "apptainer":
            return self._apptainer(call)
        return self._docker_like(call)

    def _worker_env(self, call: WorkerCall) -> dict[str, str]:
        env = {**call.env, "PYTHONPATH": CONTAINER_SOURCE, "HF_HUB_OFFLINE": "1"}
        if call.threads:
            env.setdefault("OMP_NUM_THREADS", str(call.threads))
        return env

    def _mounts(self, call: WorkerCall) -> list[tuple[str, str, bool]]:
        """(host path, container path, read-only): the source, then every trial path at its own place."""
        mounts = [(str(source_root() / "workbench"), f"{CONTAINER_SOURCE}/workbench", True)]
        seen = set()
        for paths, ro in ((call.writable, False), (call.readable, True)):
            for p in paths:
                if str(p) not in seen:
                    seen.add(str(p))
                    mounts.append((str(p), str(p), ro))
        return mounts

    def _docker_like(self, call: WorkerCall) -> list[str]:
        rt = self.runtime
        cmd = [rt, "run", "--rm", "--name", call.name, "--ipc=host", "--init"]
        if not any(a.startswith(("--network", "--net")) for a in self.spec.args):
            cmd += ["--network", "none"]
        cmd += ["--userns=keep-id"] if rt == "podman" else ["--user", f"{os.getuid()}:{os.getgid()}"]
        if call.device_kind == "cuda" and self.spec.gpus:
            idx = call.device_index or 0
            cmd += ["--gpus", f"device={idx}"] if rt == "docker" else ["--device", f"nvidia.com/gpu={idx}"]
        if call.threads:
            cmd += ["--cpus", str(call.threads)]
        if call.memory_limit_gb:
            cmd += ["--memory", f"{int(call.memory_limit_gb * 1024**3)}b"]
        for src, dst, ro in self._mounts(call):
            cmd += ["-v", f"{src}:{dst}:{'ro' if ro else 'rw'}"]
        for k, v in sorted(self._worker_env(call).items()):
            cmd += ["-e", f"{k}={v}"]
        return [*cmd, *self.spec.args, self.spec.image, self.spec.python, *call.worker_args()]

    def _apptainer(self, call: WorkerCall) -> list[str]:
        cmd = ["apptainer", "exec", "--cleanenv", "--containall", "--no-home"]
        env = self._worker_env(call)
        if call.device_kind == "cuda" and self.spec.gpus:
            cmd.append("--nv")
            env["CUDA_VISIBLE_DEVICES"] = str(call.device_index or 0)
        for src, dst, ro in self._mounts(call):
            cmd += ["--bind", f"{src}:{dst}:{'ro' if ro else 'rw'}"]
        for k, v in sorted(env.items()):
            cmd += ["--env", f"{k}={v}"]
        return [*cmd, *self.spec.args, self.spec.image, self.spec.python, *call.worker_args()]

    def watched_pids(self, proc: subprocess.Popen[bytes], call: WorkerCall) -> list[int]:
        """Apptainer's processes are the client's children; a daemon's container is found by inspect
        (its init process) and by the GPU (NVML's running processes), never by the client's pid."""
        if self.runtime == "apptainer":
            return [proc.pid]
        pids = []
        p = subprocess.run(
            [self.runtime, "inspect", "-f", "{{.State.Pid}}", call.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if p.returncode == 0 and p.stdout.strip().isdigit() and int(p.stdout.strip()) > 0:
            pids.append(int(p.stdout.strip()))
        if call.device_kind == "cuda":
            from workbench.trials.orchestrator.memory_sampler import gpu_pids

            pids += gpu_pids(call.device_index or 0)
        return pids

    def kill(self, proc: subprocess.Popen[bytes], call: WorkerCall) -> None:
        if self.runtime != "apptainer":
            subprocess.run([self.runtime, "kill", call.name], capture_output=True, timeout=30)
        super().kill(proc, call)


def container_name(study: str, trial_id: str) -> str:
    """A name the container runtime accepts and that tells whose trial it is (and can be killed by)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"workbench-{study}-{trial_id}-{os.getpid()}")[:120]


def launcher_for(runtime: RuntimeSpec | None) -> Launcher:
    """The launcher a study's `runtime:` section asks for (one per distinct section, so probes are cached)."""
    if runtime is None:
        return _cached("{}")
    return _cached(runtime.model_dump_json(exclude={"env"}))


@lru_cache(maxsize=16)
def _cached(runtime_json: str) -> Launcher:
    rt = RuntimeSpec.model_validate_json(runtime_json)
    if rt.container is not None:
        return ContainerLauncher(rt.container)
    if rt.python is not None:
        return PythonLauncher(rt.python)
    return LocalLauncher()
