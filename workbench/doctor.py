"""`workbench doctor`: can each engine run here, in which environment, and if not, why and how to fix it.

Engines run in their own environments (this interpreter, another interpreter named by a study's
`runtime: python:`, or a container), so "is it installed?" has one answer per environment. Doctor asks
each engine's own `check_available()` here, looks for a GPU through NVML, shows the stores the commands
would use, and, given a study, checks the study's runtime: the interpreter exists and can import the
worker's and the engine's packages (a small standard-library probe run by that interpreter), or the
container runtime exists and answers `<runtime> info`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from workbench import settings

SOURCE = Path(__file__).resolve().parent.parent  # the folder that holds the `workbench` package
PROBE_TIMEOUT_S = 60
WORKER_PACKAGES = ("pydantic", "yaml")

# Run by the study's interpreter: standard library only, the workbench source on sys.path. It reports
# which packages that environment has, then (when the worker's own needs are met) the engine's answer.
PROBE = """
import importlib.util, json, platform, sys
src, engine, packages = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, src)
out = {"python": sys.executable, "version": platform.python_version(),
       "missing": [p for p in packages if importlib.util.find_spec(p.replace("nvidia-", "")) is None]}
try:
    from workbench.engines import get_engine_class
    out["why"] = get_engine_class(engine).check_available()
except Exception as e:
    out["why"] = f"the workbench's worker cannot start there: {type(e).__name__}: {e}"
print(json.dumps(out))
"""


def engines_here() -> list[dict[str, Any]]:
    """Every registered engine: can it run in this interpreter, and if not, why (with its install route)."""
    from workbench.engines import engine_names, get_engine_class

    rows = []
    for name in engine_names():
        cls = get_engine_class(name)
        why = cls.check_available()
        docs = SOURCE / "docs" / f"{name}.md"
        rows.append(
            {
                "name": name,
                "available": why is None,
                "environment": f"this interpreter ({sys.executable})",
                "why": why,
                "docs": str(docs) if docs.exists() else None,
                "notes": cls.doctor_notes(),
            }
        )
    return rows


def gpu() -> dict[str, Any]:
    """The NVIDIA GPUs NVML sees (none on a machine without the driver or without pynvml)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - any failure means no usable NVML
        return {"nvml": False, "count": 0, "names": [], "why": f"NVML unavailable ({type(e).__name__}: {e})"}
    names = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        n = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
        names.append(n.decode() if isinstance(n, bytes) else n)
    return {"nvml": True, "count": len(names), "names": names, "why": None}


def stores() -> dict[str, Any]:
    """The stores and folders a command run from here uses (flags aside), and whether the SQLite ones exist."""
    from workbench.study import redact

    out: dict[str, Any] = {
        "project_root": str(settings.project_root()),
        "home": str(settings.workbench_home()),
    }
    for key, url in (("storage", settings.storage_url()), ("tracking_uri", settings.tracking_uri())):
        exists = Path(url.removeprefix("sqlite:///")).exists() if url.startswith("sqlite:///") else None
        out[key] = {"url": redact(url), "exists": exists}
    return out


def check_runtime(spec: Any) -> dict[str, Any]:
    """Whether the study's runtime can run its engine: this interpreter, another one, or a container."""
    rt = spec.runtime
    if rt.container is not None:
        return _check_container(rt.container)
    if rt.python is not None:
        return _check_python(rt.python, spec.engine)
    from workbench.engines import get_engine_class

    cls = get_engine_class(spec.engine)
    why = cls.check_available_for(spec.options())
    return {"environment": f"this interpreter ({sys.executable})", "ok": why is None, "why": why}


def _check_python(python: str, engine: str) -> dict[str, Any]:
    from workbench.engines import get_engine_class

    where = {"environment": f"the study's runtime python ({python})"}
    exe = shutil.which(python) or (python if Path(python).exists() else None)
    if exe is None:
        return {**where, "ok": False, "why": f"{python} does not exist (runtime.python of the study)"}
    packages = [*WORKER_PACKAGES, *get_engine_class(engine).packages]
    try:
        p = subprocess.run(
            [exe, "-c", PROBE, str(SOURCE), engine, json.dumps(packages)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
        probe = json.loads(p.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return {**where, "ok": False, "why": f"{python} did not answer the probe ({type(e).__name__}: {e})"}
    missing_worker = [m for m in probe["missing"] if m in WORKER_PACKAGES]
    why = probe["why"]
    if missing_worker:
        others = [m for m in probe["missing"] if m not in WORKER_PACKAGES]
        why = (
            f"the worker needs {', '.join(missing_worker)} there: `{python} -m pip install pydantic pyyaml`"
            + (f"; the engine's packages missing there: {', '.join(others)}" if others else "")
        )
    return {**where, "ok": why is None, "why": why, "probe": probe}


def _check_container(c: Any) -> dict[str, Any]:
    where = {"environment": f"the study's container {c.image} ({c.runtime})"}
    exe = shutil.which(c.runtime)
    if exe is None:
        return {**where, "ok": False, "why": f"the container runtime {c.runtime!r} is not on PATH"}
    info = ["info"] if c.runtime != "apptainer" else ["version"]
    try:
        p = subprocess.run([exe, *info], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {**where, "ok": False, "why": f"`{c.runtime} {info[0]}` did not answer ({type(e).__name__})"}
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or [""]
        return {**where, "ok": False, "why": f"`{c.runtime} {info[0]}` failed: {tail[0]}"}
    return {**where, "ok": True, "why": None}


def diagnose(spec: Any = None) -> dict[str, Any]:
    """Everything doctor reports, as plain data (`workbench doctor --json`)."""
    out: dict[str, Any] = {
        "python": sys.executable,
        "workbench_source": str(SOURCE),
        "engines": engines_here(),
        "gpu": gpu(),
        "stores": stores(),
    }
    if spec is not None:
        out["study"] = {"name": spec.name, "engine": spec.engine, **check_runtime(spec)}
    return out


def format_report(d: dict[str, Any]) -> str:
    """The report for people: one line per engine, then GPU, stores and the study's runtime."""
    lines = [f"workbench from {d['workbench_source']}, interpreter {d['python']}", "engines:"]
    for e in d["engines"]:
        state = "can run" if e["available"] else "cannot run"
        lines.append(f"  {e['name']:<8} {state} in {e['environment']}")
        if e["why"]:
            lines.append(f"           why: {e['why']}")
            if e["docs"]:
                lines.append(
                    f"           see {e['docs']} (its own environment: another interpreter or a container)"
                )
        lines.extend(f"           {n}" for n in e.get("notes") or [])
    g = d["gpu"]
    lines.append(
        f"GPU: {', '.join(g['names'])}" if g["count"] else f"GPU: none ({g['why'] or 'NVML sees no GPU'})"
    )
    s = d["stores"]
    lines.append(f"project root: {s['project_root']}; trial folders and cache: {s['home']}")
    for key in ("storage", "tracking_uri"):
        state = {True: "exists", False: "not created yet", None: "not checked"}[s[key]["exists"]]
        lines.append(f"{'Optuna storage' if key == 'storage' else 'MLflow'}: {s[key]['url']} ({state})")
    if "study" in d:
        st = d["study"]
        verdict = "can run" if st["ok"] else "cannot run"
        lines.append(f"study {st['name']!r} (engine {st['engine']}): {verdict} in {st['environment']}")
        if st["why"]:
            lines.append(f"  why: {st['why']}")
    return "\n".join(lines)
