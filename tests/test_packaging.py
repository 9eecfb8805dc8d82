"""environment.yml installs the same pinned dependencies as pyproject.toml."""

from __future__ import annotations

import tomllib
import yaml

from tests.conftest import ROOT


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    assert not any(d.startswith("tensorrt") for d in pip)  # TensorRT-LLM is the optional part
    assert project["optional-dependencies"]["trtllm"] == ["tensorrt_llm==1.2.1"]
