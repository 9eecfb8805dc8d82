"""The engine conformance suite: what every registered engine must satisfy, as reusable checks.

Like Optuna's storage tests, the checks are plain functions taking an engine name and a `Setup`
(what the engine needs for its context), so `test_conformance.py` runs them over every registered
engine, and an engine's own package (or the plugin test's temporary environment) can run them too:

    from tests.engines import conformance as C
    C.check_declarations("echo"); C.check_run("echo", C.Setup(model=...))
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engines import get_engine_class
from workbench.engines.base import Artifact, EngineError, OpenContext, Request
from workbench.knobs import CORE_KNOBS
from workbench.types import FAILURE_KINDS, DeviceInfo, FeasibilityContext

CPU = DeviceInfo("cpu", "cpu", 24 * 1024**3)
H100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", 85_520_809_984, (9, 0), 0)
HEAVY = ("torch", "transformers", "tensorrt_llm", "vllm")
#: an install route in a "not available" message: a package manager command or a container
INSTALL_ROUTE = re.compile(r"pip install|conda install|container", re.IGNORECASE)


@dataclass
class Setup:
    """What an engine needs for its context in the suite: options, a model, whether it can run here."""

    options: dict[str, Any] = field(default_factory=dict)
    study_dir: str | None = None
    model: str | None = None
    model_dtype: str = "auto"
    #: knob values over the defaults for the run check (e.g. a small page size)
    knobs: dict[str, Any] = field(default_factory=dict)


def feasibility_context(name: str, setup: Setup) -> FeasibilityContext:
    options = get_engine_class(name).parse_options(setup.options)
    return FeasibilityContext(model_dtype=setup.model_dtype, options=options, study_dir=setup.study_dir)


def open_context(
    name: str, setup: Setup, knobs: dict[str, Any], device: DeviceInfo = CPU, **kw: Any
) -> OpenContext:
    """The context the trial layer would make: the options validated once, by the engine's model."""
    return OpenContext(
        model_source=setup.model or "no-model",
        device=device,
        model_dtype=setup.model_dtype,
        options=get_engine_class(name).parse_options(setup.options),
        study_dir=setup.study_dir,
        knobs=knobs,
        cpu_kv_budget_gb=0.01,
        study="conformance",
        trial_id="0",
        **kw,
    )


# ----------------------------------------------------------------------------------- declarations
def check_declarations(name: str) -> None:
    """Core knobs declared; defaults valid; build-time flags bools; options model pydantic."""
    cls = get_engine_class(name)
    assert cls.name == name and isinstance(cls.version, str) and cls.version
    assert set(CORE_KNOBS) <= set(cls.knobs), f"{name} lacks core knobs {set(CORE_KNOBS) - set(cls.knobs)}"
    for key, k in cls.knobs.items():
        assert k.name == key, (name, key)
        assert k.check(k.default) == k.default, (name, key)
        assert isinstance(k.build_time, bool), (name, key)
    from pydantic import BaseModel

    from workbench.engines.base import Engine

    assert isinstance(cls.options_model, type) and issubclass(cls.options_model, BaseModel), name
    assert cls.executor in ("worker", "replay"), name
    # a worker runs exactly the engines it can bind to a trial; the others build and open nothing
    assert issubclass(cls, Engine) == (cls.executor == "worker"), name
    assert isinstance(cls.packages, tuple) and all(isinstance(p, str) for p in cls.packages), name


def check_available(name: str) -> None:
    """None, or a message that says how to install what is missing."""
    msg = get_engine_class(name).check_available()
    assert msg is None or (isinstance(msg, str) and INSTALL_ROUTE.search(msg)), (name, msg)


def engine_modules(name: str) -> list[Any]:
    """The engine's module, or every module of its package when the package exports the engine."""
    import importlib
    import pkgutil

    cls = get_engine_class(name)
    module = sys.modules[cls.__module__]
    package = cls.__module__.rpartition(".")[0]
    pkg = sys.modules.get(package)
    if not package or package == "workbench.engines" or getattr(pkg, cls.__name__, None) is not cls:
        return [module]
    names = [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    return [pkg, *(importlib.import_module(n) for n in names)]


def check_error_kinds(name: str) -> None:
    """Every EngineError subclass the engine defines carries a valid FailureKind."""
    for module in engine_modules(name):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, EngineError):
                assert obj.kind in FAILURE_KINDS, (name, module.__name__, obj.__name__, obj.kind)


_FEASIBILITY_PROBE = """
import json, sys
from workbench.engines import get_engine_class
from workbench.types import DeviceInfo, FeasibilityContext
setup = json.loads(sys.argv[1])
cls = get_engine_class(setup["name"])
opts = cls.parse_options(setup["options"])
ctx = FeasibilityContext(model_dtype=setup["dtype"], options=opts, study_dir=setup["study_dir"])
out = {}
for label, dev in (("cpu", DeviceInfo("cpu", "cpu", 24 * 1024**3)),
                   ("hopper", DeviceInfo("cuda", "NVIDIA H100", 85_520_809_984, (9, 0), 0))):
    r = cls.infeasible_reason(cls.default_knobs(), dev, ctx)
    out[label] = r if r is None or isinstance(r, str) else repr(type(r))
out["heavy"] = sorted(m for m in ("torch", "transformers", "tensorrt_llm", "vllm") if m in sys.modules)
print(json.dumps(out))
"""


def check_feasibility_is_light(name: str, setup: Setup) -> dict[str, Any]:
    """infeasible_reason on a CPU and a Hopper GPU: str or None, in a process that never imports torch."""
    arg = {"name": name, "dtype": setup.model_dtype, "options": setup.options, "study_dir": setup.study_dir}
    r = subprocess.run(
        [sys.executable, "-c", _FEASIBILITY_PROBE, json.dumps(arg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for label in ("cpu", "hopper"):
        assert out[label] is None or (isinstance(out[label], str) and out[label]), (name, label, out[label])
    assert out["heavy"] == [], f"{name}.infeasible_reason imported {out['heavy']}"
    return out


def check_export(name: str, setup: Setup, out: Path) -> list[Path]:
    """export writes only inside `out`, and every file it returns exists (engines a worker runs)."""
    cls = get_engine_class(name)
    knobs = {**cls.default_knobs(), **setup.knobs}
    out.mkdir(parents=True, exist_ok=True)
    files = cls(open_context(name, setup, knobs)).export(knobs, out) if cls.executor == "worker" else []
    for f in files:
        assert Path(f).resolve().is_relative_to(out.resolve()) and Path(f).is_file(), (name, f)
    assert {p.resolve() for p in out.rglob("*") if p.is_file()} == {Path(f).resolve() for f in files}
    return files


# ---------------------------------------------------------------------------------------- running
def check_run(name: str, setup: Setup) -> None:
    """open -> submit -> collect a record with token times; stats filled; close (engines that run here)."""
    from workbench.knobs import split_knobs

    cls = get_engine_class(name)
    knobs = {**cls.default_knobs(), **setup.knobs}
    _, runtime = split_knobs(cls.knobs, knobs)
    artifact = Artifact(Path(setup.model or "."), None, {"build_knobs": {}, "source": True})
    runner = cls(open_context(name, setup, knobs)).open(artifact, runtime)
    try:
        stats = runner.stats()
        assert (stats.weights_bytes or 0) > 0 and (stats.kv_cache_tokens or 0) > 0, stats
        assert (stats.kv_bytes_per_token or 0) > 0 and stats.dtype, stats
        assert isinstance(runner.resolved_config, dict) and runner.vocab_size > 0
        (rec,) = runner.generate([Request("c0", list(range(5, 17)), 4)], timeout=300)
        assert rec.id == "c0" and rec.error is None and rec.output_len == 4
        assert rec.arrival <= rec.token_times[0] <= rec.token_times[-1] <= rec.finish + 1e-6
    finally:
        runner.close()


# ------------------------------------------------------------------------------ options, validated once
def check_options_validated_once(name: str, setup: Setup, out: Path) -> int:
    """The study's engine options are validated once, where the context is made; feasibility, the build
    decision and key, validation's file checks and export read that object (no engine module validates
    again). Counts `model_validate` on the options model and its pydantic bases; returns the count."""
    from pydantic import BaseModel

    from workbench.knobs import split_knobs

    cls = get_engine_class(name)
    models = [m for m in cls.options_model.__mro__ if isinstance(m, type) and issubclass(m, BaseModel)]
    models = [m for m in models if m is not BaseModel]
    calls: list[str] = []
    saved = {m: m.__dict__.get("model_validate") for m in models}

    def counting(model: type) -> Any:
        original = model.model_validate

        def validate(c: type, *a: Any, **kw: Any) -> Any:
            calls.append(c.__name__)
            return original.__func__(c, *a, **kw)

        return classmethod(validate)

    patched = {m: counting(m) for m in models}
    try:
        for m, v in patched.items():
            m.model_validate = v  # type: ignore[method-assign]
        knobs = {**cls.default_knobs(), **setup.knobs}
        build, _ = split_knobs(cls.knobs, knobs)
        ctx = open_context(name, setup, knobs, device=H100)
        fctx = FeasibilityContext(
            model_dtype=setup.model_dtype, options=ctx.options, study_dir=setup.study_dir
        )
        cls.infeasible_reason(knobs, H100, fctx)
        cls.check_options(ctx.options, setup.study_dir)
        if cls.executor == "worker":
            engine = cls(ctx)
            cls.needs_build_for(ctx.options, build)
            engine.build_material(build)
            out.mkdir(parents=True, exist_ok=True)
            engine.export(knobs, out)
    finally:
        for m, v in saved.items():
            if v is None:
                delattr(m, "model_validate")
            else:
                m.model_validate = v  # type: ignore[method-assign]
    assert len(calls) == 1, f"{name}: engine options validated {len(calls)} times ({calls})"
    return len(calls)
