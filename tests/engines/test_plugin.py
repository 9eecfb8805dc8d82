"""An engine from an installed package: entry point `workbench.engines`, seen by the registry and the worker.

The echo plugin (tests/engines/echo_plugin) is installed into a temporary virtual environment that sees
the workbench and its dependencies through a `.pth` file (no network); the main environment is untouched.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import small_study

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = Path(__file__).resolve().parent / "echo_plugin"


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{args}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("plugin-venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])  # pip comes through the .pth
    py = venv / "bin" / "python"
    own_site = Path(
        _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    # the workbench source and the main environment's packages, after the venv's own
    (own_site / "workbench-main.pth").write_text("\n".join([str(ROOT), *site.getsitepackages()]) + "\n")
    src = tmp_path_factory.mktemp("plugin-src")
    for f in PLUGIN.iterdir():
        (src / f.name).write_text(f.read_text())
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)])
    return py


def test_registered_through_the_entry_point(plugin_venv):
    code = textwrap.dedent("""
        import json
        from workbench.engines import engine_names, get_engine_class
        cls = get_engine_class("echo")
        print(json.dumps({"names": engine_names(), "cls": cls.__module__ + ":" + cls.__name__}))
    """)
    out = json.loads(_run([str(plugin_venv), "-c", code], cwd=ROOT).stdout)
    assert {"echo", "hf", "trtllm", "replay"} <= set(out["names"])
    assert out["cls"] == "wb_echo_engine:EchoEngine"
    # the main environment does not see it
    main = _run([sys.executable, "-c", "from workbench.engines import engine_names; print(engine_names())"])
    assert "echo" not in main.stdout


def test_the_plugin_passes_the_conformance_suite(plugin_venv, tmp_path):
    code = textwrap.dedent(f"""
        from pathlib import Path
        from tests.engines import conformance as C
        C.check_declarations("echo"); C.check_available("echo"); C.check_error_kinds("echo")
        out = C.check_feasibility_is_light("echo", C.Setup())
        assert out["cpu"] is None and "CPU only" in out["hopper"]
        C.check_export("echo", C.Setup(), Path({str(tmp_path / "out")!r}))
        C.check_run("echo", C.Setup())
        print("ok")
    """)
    assert _run([str(plugin_venv), "-c", code], cwd=ROOT).stdout.strip().endswith("ok")


def test_the_worker_runs_a_plugin_engine(plugin_venv, tiny_model, tmp_path):
    """The trial worker, started with the plugin environment's interpreter, measures the echo engine."""
    code = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from workbench.spec import validate_spec
        from workbench.trials.plan import TrialPlan
        from workbench.trials.orchestrator.planning import make_plan
        from workbench.types import DeviceInfo
        spec = validate_spec(json.loads(Path({str(tmp_path / "study.json")!r}).read_text()))
        knobs = {{"max_batch_size": 4, "kv_cache_fraction": 0.5, "max_num_tokens": 256, "quantization": "none"}}
        plan = make_plan(spec, "echo-0", knobs, DeviceInfo("cpu", "cpu", 2**34), Path({str(tmp_path)!r}) / "cache",
                              Path({str(tmp_path)!r}) / "out")
        Path({str(tmp_path / "plan.json")!r}).write_text(plan.model_dump_json())
    """)
    study = {**small_study(tiny_model), "engine": "echo", "search_space": {"max_batch_size": 4}}
    (tmp_path / "study.json").write_text(json.dumps(study))
    (tmp_path / "out").mkdir()
    _run([str(plugin_venv), "-c", code], cwd=ROOT)
    _run(
        [
            str(plugin_venv),
            "-m",
            "workbench.trials.worker",
            str(tmp_path / "plan.json"),
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
    )
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "COMPLETE", result.get("failure")
    assert result["engine"] == "echo" and result["metrics"]["output_tok_s"] > 0
    assert result["metrics"]["kv_cache_tokens"] > 0
