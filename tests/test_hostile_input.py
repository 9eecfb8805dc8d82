"""Hostile study files: every mistake is one clear message and exit code 2 from `validate`, `trial` and
`tune`, quickly and in bounded memory (the campaign in benchmarks/hostile_input.py measures both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, scaled, small_study
from tests.hostile import CASES
from workbench.cli import main
from workbench.spec import SpecError, load_spec

#: a bounded child: the address-space limit turns a runaway (the alias bomb) into a failure, not a hang
LIMIT_CODE = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
    "from workbench.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def study_text(tiny_model: Path) -> str:
    return yaml.safe_dump(small_study(tiny_model), sort_keys=False)


def _write(tmp_path: Path, text: str, builder) -> Path:
    p = tmp_path / "study.yaml"
    p.write_bytes(builder(text, tmp_path))
    return p


@pytest.mark.parametrize(("name", "builder", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "trial", "tune"])
def test_every_mistake_is_one_message_and_exit_2(
    tmp_path, study_text, capsys, name, builder, expected, command
):
    p = _write(tmp_path, study_text, builder)
    if name.startswith("alias bomb") or name == "5000-digit number":  # could hang or blow up in-process
        r = subprocess.run(
            [sys.executable, "-c", LIMIT_CODE, command, str(p)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=scaled(300),
        )
        rc, err = r.returncode, r.stderr
    else:
        rc = main([command, str(p)])
        err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith(f"error: {p}: ") and "Traceback" not in err
    assert expected in err
    assert len(err) < 8000  # one readable message (at most 20 problems listed), whatever the file holds


def test_range_key_message_names_its_line(tmp_path, study_text):
    p = _write(tmp_path, study_text, lambda t, _: t.replace("high: 0.9", "hgih: 0.9").encode())
    with pytest.raises(SpecError) as ei:
        load_spec(p)
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if "hgih" in t)
    assert (
        f"line {line}, search_space.kv_cache_fraction.hgih: unknown key; allowed keys: low, high, step, log"
        in str(ei.value)
    )
    assert "allowed keys: name" not in str(ei.value)


def test_good_files_still_load(tmp_path, study_text):
    """What the checks must not reject: an anchor and its alias, a merge key, a BOM, a known sampler option."""
    text = study_text.replace("num_requests: 8", "num_requests: &n 8\n  repeats: *n")
    text = text.replace("  input_len:\n", "  input_len:\n    <<: {dist: uniform}\n")
    text += "sampler: {name: tpe, options: {n_startup_trials: 3, multivariate: true}}\n"
    p = tmp_path / "study.yaml"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    spec = load_spec(p)
    assert spec.workload.num_requests == 8 and spec.workload.repeats == 8
    assert spec.workload.input_len.dist == "uniform"
    assert spec.sampler.options == {"n_startup_trials": 3, "multivariate": True}


def test_missing_model_stops_runs_but_not_inspection(tmp_path, study_text):
    """Running needs the model here; reading results back (status, best, report; a definition stored in
    the study) may happen on a machine without it, so only runs check local paths."""
    import workbench.api as wb
    from workbench.spec import require_local_paths, validate_spec

    missing = tmp_path / "gone"
    p = tmp_path / "study.yaml"
    p.write_text(study_text.replace(study_text.split("path: ")[1].split("\n")[0], str(missing)))
    with pytest.raises(SpecError, match="model.path: no such folder"):
        load_spec(p)
    spec = load_spec(p, check_paths=False)
    assert spec.model_source == str(missing)
    stored = validate_spec(spec.model_dump(mode="json"))  # as `stored_spec` reads it back
    with pytest.raises(SpecError, match=f"model.path: no such folder: {missing}"):
        require_local_paths(stored)
    with pytest.raises(SpecError, match="model.path: no such folder"):
        wb.run(stored, storage=f"sqlite:///{tmp_path}/o.db", tracking_uri="none")
    assert not (tmp_path / "o.db").exists()
