"""Packaging: pyproject's ranges, the tested lock, environment.yml, and TensorRT-LLM 1.2.1's pins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCK = ROOT / "constraints" / "workbench.txt"
TRTLLM_PINS = ROOT / "constraints" / "tensorrt-llm-1.2.1.txt"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert name and version and re.fullmatch(r"[A-Za-z0-9_.\-]+", name), line
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements(extras: set[str]) -> list[Requirement]:
    """The project's requirements for these extras, with `workbench[...]` self-references expanded."""
    project = _project()
    optional = project["optional-dependencies"]
    reqs, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for r in map(Requirement, optional[extra]):
            if canonicalize_name(r.name) == "workbench":
                todo.extend(r.extras)
            else:
                reqs.append(r)
    return reqs


def test_the_orchestrator_needs_no_torch():
    base = {canonicalize_name(Requirement(r).name) for r in _project()["dependencies"]}
    assert not base & {"torch", "transformers", "accelerate", "torchao", "lm-eval", "datasets", "jupyterlab"}
    assert {"optuna", "mlflow", "pydantic", "pandas", "plotly"} <= base


def test_lock_is_the_tested_resolution_of_pyproject():
    """Every requirement of `.[all,dev]` (what `make install` installs) is in the lock at a version
    inside its range; lower bounds in pyproject are at or below the locked versions."""
    pins = _lock()
    assert "workbench" not in pins
    assert len(pins) > 100  # the full frozen set, not only the direct requirements
    for req in _requirements({"all", "dev"}):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in {LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} has {name}=={pins[name]}, not {req}"
        )
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary
            assert canonicalize_name(f"{req.name}-{extra}") in pins or extra == "hf", req


def test_make_and_ci_install_with_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK   := constraints/workbench.txt" in makefile
    assert "pip install -q -c $(LOCK) $(TORCH)" in makefile  # torch first, then the project
    assert "pip install -q -c $(LOCK) -e '.[all,dev]'" in makefile
    assert "TORCH  ?= torch==" in makefile
    torch = re.search(r"TORCH\s+\?= torch==(\S+)", makefile).group(1)
    assert _lock()["torch"] == Version(torch)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert "CPython " + python.split("=")[1] in LOCK.read_text()  # the interpreter the lock was made on
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-c constraints/workbench.txt", "-e .[all,dev]"]
    assert not any(d.startswith("tensorrt") for d in pip)  # TensorRT-LLM is the optional part
    assert _project()["optional-dependencies"]["trtllm"] == ["tensorrt_llm==1.2.1"]


# --- the resolver against TensorRT-LLM 1.2.1's pins ------------------------------------------------

# Pure-Python dependencies published only as source archives: `--python-version` needs wheels, so the
# test builds these (version-independent py3 wheels) first and offers them with --find-links.
SDIST_ONLY = ["sqlitedict", "rouge_score", "word2number"]
# Extras that co-install with TensorRT-LLM 1.2.1's set. The others (hf, gp) cannot; the test below
# names each of their requirements that conflicts, and the pin it conflicts with.
CO_INSTALL = ["", "accuracy,notebooks"]
CONFLICTS = {  # requirement of the extra -> what pip names as the other side
    "torch": "torch<=2.14.1,==2.9.1",  # (the machine-wide pip constraint adds the <=2.14.1)
    "transformers": "transformers==4.57.3",
    "tokenizers": "transformers 4.57.3 depends on tokenizers<=0.23.0",
}
COMPATIBLE = {"accelerate", "torchao"}


def _pins() -> list[Requirement]:
    lines = [ln.split("#", 1)[0].strip() for ln in TRTLLM_PINS.read_text().splitlines()]
    return [Requirement(ln) for ln in lines if ln]


def _pip(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _index_reachable() -> str | None:
    """None when pip can read the package index, else why not."""
    try:
        r = _pip("index", "versions", "transformers", timeout=180)
    except subprocess.TimeoutExpired:
        return "pip index versions timed out"
    return (
        None if r.returncode == 0 and "4.57.3" in r.stdout else (r.stderr.strip().splitlines() or ["?"])[-1]
    )


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    """Builds the workbench wheel and returns resolve(extras) -> (returncode, {name: version}, stderr)."""
    why = _index_reachable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the package index is needed for the resolver check and cannot be read: {why}")
        pytest.skip(f"the package index cannot be read (not CI): {why}")
    tmp = tmp_path_factory.mktemp("resolve")
    r = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT))
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp / "dist").glob("workbench-*.whl")
    r = _pip("wheel", "--no-deps", "-w", str(tmp / "sdist-wheels"), *SDIST_ONLY)
    assert r.returncode == 0, r.stderr

    def resolve(*requirements: str, extras: str | None = None) -> tuple[int, dict[str, str], str]:
        """TensorRT-LLM's pins (as requirements and constraints) plus `requirements`, plus the wheel
        with `extras` unless extras is None."""
        if extras is not None:
            requirements += (f"{wheel}[{extras}]" if extras else str(wheel),)
        report = tmp / "report.json"
        report.unlink(missing_ok=True)
        r = _pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            "--python-version",
            "3.12",
            "--only-binary=:all:",
            "--target",
            str(tmp / "target"),
            "--find-links",
            str(tmp / "sdist-wheels"),
            "-c",
            str(TRTLLM_PINS),
            "-r",
            str(TRTLLM_PINS),
            *requirements,
        )
        if r.returncode != 0:  # pip prints the conflict's causes on stdout, the error on stderr
            return r.returncode, {}, r.stdout + r.stderr
        got = json.loads(report.read_text())["install"]
        return 0, {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in got}, r.stderr

    return resolve


@pytest.mark.resolver
@pytest.mark.parametrize("extras", CO_INSTALL)
def test_resolves_with_tensorrt_llm_pins(resolver, extras):
    """Installing the workbench (base, or with these extras) into TensorRT-LLM 1.2.1's set changes none
    of its pins: pip's resolver succeeds and every pinned package stays at its pinned version."""
    t0 = time.monotonic()
    rc, got, err = resolver(extras=extras)
    assert rc == 0, err
    assert got["workbench"] == _project()["version"]
    for pin in _pins():
        name = canonicalize_name(pin.name)
        assert name in got, f"{name} is not in the resolution"
        assert pin.specifier.contains(got[name], prereleases=True), (
            f"{name} resolved to {got[name]}, not {pin}"
        )
    assert got["torch"] == "2.9.1" and got["transformers"] == "4.57.3" and got["datasets"] == "3.1.0"
    assert Version(got["numpy"]) < Version("2")
    if "accuracy" in extras:
        assert "lm-eval" in got
    print(f"[{extras}] {len(got)} packages in {time.monotonic() - t0:.0f} s")


@pytest.mark.resolver
@pytest.mark.parametrize("name", sorted(CONFLICTS))
def test_hf_engine_cannot_share_tensorrt_llms_environment(resolver, name):
    """The hf engine's torch, transformers and tokenizers (and the GP sampler's torch) cannot join
    TensorRT-LLM 1.2.1's set: the hf engine and `sampler: gp` need their own environment (the trial
    worker runs in another interpreter; docs/install.md)."""
    (req,) = [r for r in map(Requirement, _project()["optional-dependencies"]["hf"]) if r.name == name]
    rc, _, err = resolver(str(req))
    assert rc != 0, f"{req} now co-installs with TensorRT-LLM 1.2.1: update CONFLICTS and docs/install.md"
    assert "ResolutionImpossible" in err and f"The user requested {req}" in err, err
    assert CONFLICTS[name] in err, err


@pytest.mark.resolver
def test_the_rest_of_the_hf_extra_co_installs(resolver):
    optional = _project()["optional-dependencies"]
    hf = {canonicalize_name(Requirement(r).name): r for r in optional["hf"]}
    assert set(hf) == set(CONFLICTS) | COMPATIBLE  # every requirement of the extra is classified
    assert {canonicalize_name(Requirement(r).name) for r in optional["gp"]} <= set(CONFLICTS)
    rc, got, err = resolver(*(hf[n] for n in sorted(COMPATIBLE)))
    assert rc == 0, err
    assert got["torch"] == "2.9.1" and got["transformers"] == "4.57.3"
