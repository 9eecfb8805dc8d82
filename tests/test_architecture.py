"""The package's shape, measured on its import graph (scripts/architecture.py holds the floors).

Issue #12's limits: no import circle, at most 5 imports that run upward (each explained in
ALLOWED_UPWARD), no module over 400 lines; function complexity is ruff's (pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("architecture", ROOT / "scripts" / "architecture.py")
arch = importlib.util.module_from_spec(spec)
sys.modules["architecture"] = arch
spec.loader.exec_module(arch)


def test_every_module_has_a_floor():
    for mod in arch.modules():
        arch.floor(mod)


def test_no_import_circles():
    assert arch.cycles(arch.imports(arch.modules())) == []


def test_upward_imports_are_few_and_explained():
    up = arch.upward(arch.imports(arch.modules()))
    assert len(up) <= 5, up
    assert [u for u in up if u not in arch.ALLOWED_UPWARD] == []


def test_module_sizes_and_no_formatter_skips():
    """Functions are held by ruff's complexity rules (C901, PLR0912, PLR0915 in pyproject.toml, run by
    `make test`); modules by their formatted size, which no `# fmt: skip` may buy."""
    mods = arch.modules()
    assert arch.long_modules(mods) == []
    skips = [p for p in (ROOT / "workbench").rglob("*.py") if "fmt: skip" in p.read_text()]
    assert skips == []


def test_the_measure_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself can fail: a types-floor module importing the CLI is reported."""
    pkg = tmp_path / "workbench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "types.py").write_text("from workbench.cli import main\n")
    (pkg / "cli.py").write_text("import workbench.types\n")
    monkeypatch.setattr(arch, "ROOT", tmp_path)
    monkeypatch.setattr(arch, "PACKAGE", pkg)
    graph = arch.imports(arch.modules())
    assert arch.upward(graph) == [("workbench.types", "workbench.cli")]
    assert arch.cycles(graph) == [["workbench.cli", "workbench.types"]]


def test_the_trial_worker_never_reaches_the_orchestrator():
    """Issue #20 item 5: `trials/` is split by the process a module runs in; the worker (run in the
    engine's own environment) imports nothing of the orchestrating side, not even lazily."""
    graph = arch.imports(arch.modules())
    worker = [m for m in graph if m.startswith("workbench.trials.worker")]
    assert worker, "the worker package moved: update this test"
    seen, todo = set(), list(worker)
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    assert sorted(m for m in seen if m.startswith("workbench.trials.orchestrator")) == []


def test_the_trial_layer_reads_declared_runner_capabilities():
    """Issue #20 item 3: what a runner can do (a server handle, errors as results, the usage check,
    server metrics) is declared on `Runner`; trials/ and accuracy/ never probe for attributes."""
    probes = []
    for pkg in ("trials", "accuracy"):
        for f in (ROOT / "workbench" / pkg).rglob("*.py"):
            for n, line in enumerate(f.read_text().splitlines(), 1):
                if any(f"{fn}(runner" in line for fn in ("getattr", "hasattr")):
                    probes.append(f"{f.relative_to(ROOT)}:{n}")
    assert probes == []


def test_engine_options_are_validated_in_one_place():
    """Issue #20 item 3: the study's engine options are validated once (`Engine.parse_options`, called
    where a context or a definition is made); no engine module validates them again (there were 22)."""
    calls = []
    for f in (ROOT / "workbench" / "engines").rglob("*.py"):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if "Options.model_validate(" in line or "options_model.model_validate(" in line:
                calls.append(f"{f.relative_to(ROOT)}:{n}")
    assert calls == ["workbench/engines/base.py:170"], calls


def test_replay_is_answered_by_its_executor_not_an_engine():
    """Issue #20 item 3: `replay` declares knobs, options and feasibility only; it has no build or open
    that raise, and the worker refuses to bind it."""
    import pytest

    from workbench.engines import get_engine_class, worker_engine_class
    from workbench.engines.base import Engine, EngineError

    cls = get_engine_class("replay")
    assert not issubclass(cls, Engine) and not hasattr(cls, "build") and not hasattr(cls, "open")
    assert cls.executor == "replay"
    with pytest.raises(EngineError, match="replay executor answers"):
        worker_engine_class("replay")
