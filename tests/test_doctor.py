"""`workbench doctor`: each engine's answer here, and a study's runtime checked where it points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, scaled, small_study
from workbench.engines.trtllm import available as trtllm_available


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "doctor", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=scaled(600),
    )


@pytest.mark.skipif(trtllm_available(), reason="tensorrt_llm is installed here")
def test_doctor_reports_each_engine_here():
    p = _doctor("--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    engines = {e["name"]: e for e in d["engines"]}
    assert {"hf", "trtllm", "replay"} <= set(engines)
    assert engines["hf"]["available"] is True and engines["hf"]["why"] is None
    assert sys.executable in engines["hf"]["environment"]
    trt = engines["trtllm"]
    assert trt["available"] is False
    assert "tensorrt_llm" in trt["why"] and "release container" in trt["why"]  # the install route
    assert trt["docs"].endswith("docs/trtllm.md")
    assert d["gpu"]["nvml"] in (True, False) and d["gpu"]["count"] == len(d["gpu"]["names"])
    assert d["stores"]["storage"]["url"].startswith("sqlite:///")
    text = _doctor().stdout
    assert "hf       can run in this interpreter" in text and "trtllm   cannot run" in text
    assert "docs/trtllm.md" in text


def test_doctor_checks_the_study_runtime(tmp_path, tiny_model):
    def study(runtime: dict) -> str:
        p = tmp_path / f"s{len(list(tmp_path.iterdir()))}.yaml"
        p.write_text(yaml.safe_dump(small_study(tiny_model, runtime=runtime), sort_keys=False))
        return str(p)

    # another interpreter that has the engine's packages (this one, named by path): the probe runs there
    p = _doctor(study({"python": sys.executable}), "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)["study"]
    assert st["ok"] is True and st["why"] is None and sys.executable in st["environment"]
    assert st["probe"]["python"] and st["probe"]["missing"] == []
    # an interpreter that does not exist
    p = _doctor(study({"python": str(tmp_path / "no-such-venv/bin/python")}))
    assert p.returncode == 1 and "does not exist" in p.stdout and "cannot run" in p.stdout
    # a container runtime: missing, or present and asked `info`
    runtime = next((r for r in ("podman", "docker") if shutil.which(r)), "podman")
    p = _doctor(study({"container": {"image": "example/engine:1", "runtime": runtime}}), "--json")
    st = json.loads(p.stdout)["study"]
    assert runtime in st["environment"] and "example/engine:1" in st["environment"]
    if shutil.which(runtime) is None:
        assert st["ok"] is False and "not on PATH" in st["why"] and p.returncode == 1
    else:
        info = subprocess.run([runtime, "info"], capture_output=True, timeout=scaled(120))
        assert st["ok"] is (info.returncode == 0) and p.returncode == (0 if st["ok"] else 1)


@pytest.mark.skipif(trtllm_available(), reason="tensorrt_llm is installed here")
def test_doctor_says_which_trtllm_setup_works_here():
    d = json.loads(_doctor("--json").stdout)
    notes = {e["name"]: e for e in d["engines"]}["trtllm"]["notes"]
    assert notes[0].startswith("(a) workbench inside tensorrt-llm/release:1.2.1") and "not here" in notes[0]
    runtimes = any(shutil.which(r) for r in ("docker", "podman", "apptainer"))
    assert notes[1].startswith("(b)") and (
        ("not here" in notes[1]) == (not runtimes or not d["gpu"]["count"])
    )
    assert "ModelOpt build step" in notes[2]
    text = _doctor().stdout
    assert "(a) workbench inside" in text and "(b) workbench here, trial worker in the container" in text
