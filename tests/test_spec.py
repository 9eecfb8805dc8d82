"""Study definitions: valid files load; every mistake gets one message with file, line, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, small_study
from workbench.spec import Choices, Range, SpecError, load_spec, parse_knob_assignments


def _write(tmp_path: Path, data: object, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def _error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as ei:
        load_spec(path)
    return ei.value


def test_quickstart_is_valid(project_tiny_model):
    spec = load_spec(ROOT / "studies" / "quickstart.yaml")
    assert spec.name == "quickstart" and spec.engine == "hf"
    assert isinstance(spec.search_space["max_batch_size"], Choices)
    assert isinstance(spec.search_space["kv_cache_fraction"], Range)
    assert spec.fixed_knobs() == {"page_size": 32}
    # the model path is relative to the study file
    assert Path(spec.model_source) == (ROOT / "models" / "tiny-llama").resolve()
    assert spec.objectives[0].metric == "output_tok_s"
    assert [c.metric for c in spec.constraints] == ["ttft_ms_p95", "peak_memory_gb"]


def test_unknown_top_level_key_names_line_and_allowed_keys(tmp_path, tiny_model):
    data = small_study(tiny_model)
    data["searchspace"] = {}
    err = _error(_write(tmp_path, data))
    msg = str(err)
    assert str(tmp_path / "s.yaml") in msg
    assert "searchspace: unknown key" in msg
    assert "allowed keys: name, description, model, engine, engine_options, search_space" in msg
    line = next(
        i
        for i, t in enumerate((tmp_path / "s.yaml").read_text().splitlines(), 1)
        if t.startswith("searchspace")
    )
    assert f"line {line}, searchspace" in msg


def test_unknown_nested_key(tmp_path, tiny_model):
    err = _error(_write(tmp_path, small_study(tiny_model, **{"workload.num_request": 3})))
    assert "workload.num_request: unknown key; allowed keys: num_requests, warmup_requests" in str(err)


def test_bad_knob_bound_names_key_value_and_rule(tmp_path, tiny_model):
    err = _error(
        _write(tmp_path, small_study(tiny_model, **{"search_space.max_batch_size": {"low": 0, "high": 8}}))
    )
    assert len(err.problems) == 1
    assert (
        "search_space.max_batch_size.low: 0 is not allowed for max_batch_size: must be an integer >= 1"
        in str(err)
    )


def test_unknown_quantization_lists_allowed(tmp_path, tiny_model):
    data = small_study(tiny_model, **{"search_space.quantization": {"choices": ["none", "int3"]}})
    err = _error(_write(tmp_path, data))
    assert "search_space.quantization.choices[1]: 'int3' is not allowed for quantization" in str(err)
    assert "one of none, int8, int8_dynamic, int4, int4_intx, float8, float8_dynamic" in str(err)


def test_unknown_knob_and_unknown_engine(tmp_path, tiny_model):
    err = _error(_write(tmp_path, small_study(tiny_model, **{"search_space.max_batchsize": 4})))
    assert "search_space.max_batchsize: unknown knob for engine 'hf'; allowed knobs: max_batch_size" in str(
        err
    )
    err = _error(_write(tmp_path, small_study(tiny_model, engine="tgi")))
    assert "engine: got 'tgi'; allowed engines: hf" in str(err)


def test_model_needs_exactly_one_source(tmp_path, tiny_model):
    err = _error(_write(tmp_path, small_study(tiny_model, **{"model.id": "meta-llama/Llama-3.1-8B"})))
    assert "model: give exactly one of 'id' (a hub id) or 'path' (a local directory)" in str(err)


def test_wrong_types_and_ranges(tmp_path, tiny_model):
    data = small_study(
        tiny_model,
        **{
            "workload.num_requests": "many",
            "workload.input_len": {"dist": "uniform", "min": 50, "max": 10},
            "workload.arrival": {"mode": "rate", "rate": -1},
            "trial.device": "tpu",
        },
    )
    err = _error(_write(tmp_path, data))
    text = str(err)
    assert "4 problems" in text
    assert "workload.num_requests: got 'many'; Input should be a valid integer" in text
    assert "workload.input_len: min (50) must not exceed max (10)" in text
    assert "workload.arrival.rate: got -1; Input should be greater than 0" in text
    assert "trial.device: got 'tpu'; Input should be 'auto', 'cpu' or 'cuda'" in text


def test_unknown_metric_in_objective(tmp_path, tiny_model):
    data = small_study(tiny_model, objectives=[{"metric": "tokens_per_sec", "direction": "maximize"}])
    err = _error(_write(tmp_path, data))
    assert "objectives[0].metric: got 'tokens_per_sec'; unknown metric" in str(err)
    assert "output_tok_s" in str(err)


def test_constraint_needs_one_bound(tmp_path, tiny_model):
    data = small_study(tiny_model, constraints=[{"metric": "ttft_ms_p95"}])
    assert "constraints[0]: give exactly one of 'max', 'min' or 'max_drop_from_baseline'" in str(
        _error(_write(tmp_path, data))
    )


def test_yaml_syntax_error_has_position(tmp_path):
    err = _error(_write(tmp_path, "name: x\nmodel: {path: a\nengine: hf\n"))
    assert "not valid YAML" in str(err) and "line " in str(err)


def test_missing_file_and_non_mapping(tmp_path):
    assert "cannot read the file" in str(_error(tmp_path / "nope.yaml"))
    assert "must hold a mapping" in str(_error(_write(tmp_path, "- a\n- b\n")))


def test_length_shorthands_and_arrival_shorthand(tmp_path, tiny_model):
    spec = load_spec(
        _write(tmp_path, small_study(tiny_model, **{"workload.output_len": 17, "workload.arrival": "burst"}))
    )
    assert spec.workload.output_len.value == 17 and spec.workload.arrival.mode == "burst"


def test_knob_assignments(tmp_path, tiny_model):
    spec = load_spec(_write(tmp_path, small_study(tiny_model)))
    knobs, overrides = parse_knob_assignments(
        spec, ["max_batch_size=8", "quantization=int8", "kv_cache_fraction=0.5", "workload.num_requests=3"]
    )
    assert knobs == {"max_batch_size": 8, "quantization": "int8", "kv_cache_fraction": 0.5}
    assert overrides == {"workload.num_requests": 3}
    with pytest.raises(SpecError, match="max_batch_size: must be an integer >= 1"):
        parse_knob_assignments(spec, ["max_batch_size=-2"])
    with pytest.raises(SpecError, match="unknown knob for engine 'hf'"):
        parse_knob_assignments(spec, ["batch=2"])
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_knob_assignments(spec, ["max_batch_size"])
    spec2 = load_spec(_write(tmp_path, small_study(tiny_model)), overrides)
    assert spec2.workload.num_requests == 3


def test_missing_required_key(tmp_path, tiny_model):
    data = small_study(tiny_model)
    del data["model"]
    assert "model: required key is missing" in str(_error(_write(tmp_path, data)))


def test_every_shipped_study_validates_on_a_fresh_clone(tmp_path, tiny_model):
    """Each file under studies/ validates as cloned, given only the models the project makes
    (`make tiny-model`: models/tiny-llama; `workbench make-shape-tokenizer`: models/llama-3.1-8b-tokenizer)."""
    import shutil

    from workbench.spec import load_spec

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "studies", tmp_path / "studies")
    (tmp_path / "tests").symlink_to(root / "tests", target_is_directory=True)  # the committed GSM8K sample
    (tmp_path / "models").mkdir()
    for made in ("tiny-llama", "llama-3.1-8b-tokenizer"):
        (tmp_path / "models" / made).symlink_to(tiny_model, target_is_directory=True)
    files = sorted((tmp_path / "studies").glob("*.yaml"))
    assert len(files) >= 11
    for f in files:
        spec = load_spec(f)
        assert spec.name and spec.search_space, f.name
