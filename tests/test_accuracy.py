"""GSM8K through lm-eval on workbench engines: exact scores, the stock HF model's outputs, the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import GSM8K_DIR, small_study
from tests.oracle import OracleRunner, gsm8k_answers
from workbench import accuracy as A
from workbench.engines.base import Artifact, DeviceInfo
from workbench.engines.hf import HFEngine
from workbench.knobs import split_knobs
from workbench.spec import SpecError, validate_spec
from workbench.trials.orchestrator.planning import make_plan

DATA = str(GSM8K_DIR)


@pytest.fixture(scope="module")
def runner(tiny_model):
    spec = validate_spec(small_study(tiny_model, **{"trial.cpu_kv_budget_gb": 0.05}))
    knobs = {**HFEngine.default_knobs(), "max_batch_size": 32, "max_num_tokens": 1024, "page_size": 32}
    plan = make_plan(spec, "acc", knobs, DeviceInfo("cpu", "cpu", 0), Path("/tmp/x"), Path("/tmp/x"))
    _, runtime = split_knobs(HFEngine.knobs, knobs)
    r = HFEngine(plan.open_context()).open(Artifact(tiny_model, None, {}), runtime)
    yield r
    r.close()


def _questions(n: int) -> list[str]:
    with open(GSM8K_DIR / "test.jsonl") as f:
        return [json.loads(line)["question"].strip() for line in list(f)[:n]]


def test_oracle_gives_exactly_the_chosen_score(runner):
    qs = _questions(20)
    oracle = OracleRunner(runner, gsm8k_answers(DATA), set(qs[3:10]))  # 7 of the first 20
    res = A.evaluate(A.WorkbenchLM(oracle, max_gen_toks=4), data_path=DATA, limit=20)
    assert (res.n, res.strict, res.flexible, res.score) == (20, 0.35, 0.35, 35.0)
    assert res.strict_stderr == pytest.approx((0.35 * 0.65 / 19) ** 0.5)
    assert len(res.samples) == 40  # one record per question and filter
    right = {s["doc_id"] for s in res.samples if s["exact_match"] == 1.0}
    assert right == set(range(3, 10))
    assert res.lm_eval_config["num_fewshot"] == 5 and res.lm_eval_config["fewshot_seed"] == 0


def test_adapter_equals_stock_hf_model(runner, tiny_model):
    """Same model, same samples, greedy: the same continuations and the same scores as lm-eval's HFLM."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    res = A.evaluate(A.WorkbenchLM(runner, max_gen_toks=12), data_path=DATA, limit=4)
    hf = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1, dtype="float32", add_bos_token=True)
    ref = lm_eval.simple_evaluate(
        model=hf,
        tasks=[A.task_config("gsm8k", DATA)],
        samples={"gsm8k": [0, 1, 2, 3]},
        fewshot_random_seed=0,
        bootstrap_iters=0,
        log_samples=True,
        gen_kwargs={"max_gen_toks": 12},
    )
    ours = {(s["doc_id"], s["filter"]): s["resps"] for s in res.samples}
    theirs = {(s["doc_id"], s["filter"]): s["resps"] for s in ref["samples"]["gsm8k"]}
    assert ours == theirs
    assert res.strict == ref["results"]["gsm8k"]["exact_match,strict-match"]
    assert res.flexible == ref["results"]["gsm8k"]["exact_match,flexible-extract"]


def test_gate_matches_tensorrt_llm_numbers():
    # TensorRT-LLM: GSM8K at n = 1319 passes at reference - 3.20; MDE 4.84; n = 1024: -3.635 and 5.494
    assert A.gate_threshold(74.20, 1319) == pytest.approx(74.20 - 3.203, abs=1e-3)
    assert A.min_detectable_effect(1319) == pytest.approx(4.84, abs=0.01)
    assert A.gate_threshold(0.0, 1024) == pytest.approx(-3.635, abs=1e-3)
    assert A.min_detectable_effect(1024) == pytest.approx(5.494, abs=1e-3)
    assert A.gate_threshold(74.20, 1319, max_drop=1.0) == pytest.approx(74.20 - 1.0 - 3.203, abs=1e-3)


def test_sequential_decision_rule():
    thr = A.gate_threshold(80.0, 1000)
    assert A.sequential_decision(20.0, 100, thr, looks=10) == "fail"
    assert A.sequential_decision(99.0, 100, thr, looks=10) == "pass"
    assert A.sequential_decision(79.0, 100, thr, looks=10) is None


def test_sequential_gate_saves_samples_and_decides_like_the_full_run(runner):
    qs = _questions(60)
    answers = gsm8k_answers(DATA)
    gate = A.AccuracyGate(baseline=80.0, max_drop=0.0, sequential=True)
    bad = OracleRunner(runner, answers, set(qs[:6]))  # 10 %: clearly below 80
    res = A.evaluate(A.WorkbenchLM(bad, max_gen_toks=2), data_path=DATA, limit=60, gate=gate, chunk=10)
    assert res.gate["decision"] == "fail" and res.gate["stopped_early"] and res.n < 60
    good = OracleRunner(runner, answers, set(qs))  # 100 %
    res = A.evaluate(A.WorkbenchLM(good, max_gen_toks=2), data_path=DATA, limit=60, gate=gate, chunk=10)
    assert res.gate["decision"] == "pass" and res.gate["stopped_early"] and res.n < 60
    assert res.metrics()["gsm8k_gate_passed"] == 1.0


def test_missing_data_names_the_options(tmp_path):
    with pytest.raises(A.AccuracyDataError, match="Set accuracy.data_path to a folder holding train.jsonl"):
        A.task_config("gsm8k", tmp_path)
    with pytest.raises(A.AccuracyDataError, match="supported: gsm8k, gsm8k_cot"):
        A.task_config("gsm8k_xl", None)


def test_gate_and_package_import_without_lm_eval():
    """The worker imports lm-eval only when a trial measures accuracy."""
    code = (
        "import sys, workbench.accuracy.gate, workbench.accuracy as A; "
        "A.AccuracyGate(baseline=1.0, max_drop=0.0).record(1.0, 10); A.task_config; A.write_samples; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lm_eval'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_task_config_is_lm_evals_own_yaml():
    import lm_eval.tasks
    import yaml

    for task, name in A.TASK_FILES.items():
        raw = yaml.safe_load((Path(lm_eval.tasks.__file__).parent / "gsm8k" / name).read_text())
        raw.pop("tag", None)
        assert A.task_config(task) == raw
    local = A.task_config("gsm8k", DATA)
    assert (local["dataset_path"], local["dataset_name"]) == ("json", None)
    assert local["dataset_kwargs"]["data_files"]["test"] == str((GSM8K_DIR / "test.jsonl").resolve())


def test_gate_record_keeps_its_keys_and_a_dict_gate_still_works(runner):
    qs = _questions(6)
    oracle = OracleRunner(runner, gsm8k_answers(DATA), set(qs[:3]))
    typed = A.AccuracyGate(baseline=50.0, max_drop=0.0, sequential=False, baseline_trial=0)
    res = A.evaluate(A.WorkbenchLM(oracle, max_gen_toks=1), data_path=DATA, limit=6, gate=typed)
    keys = {"baseline", "max_drop", "alpha", "beta", "sigma", "sequential", "chunk", "baseline_trial"}
    keys |= {"threshold", "n_used", "decision", "n_planned", "looks", "stopped_early", "score"}
    assert keys | {"min_detectable_effect"} == set(res.gate)
    g = res.gate
    assert (res.score, g["n_used"], g["looks"], g["stopped_early"]) == (50.0, 6, 1, False)
    assert res.gate["threshold"] == A.gate_threshold(50.0, 6) and res.gate["decision"] == "pass"
    as_dict = {k: v for k, v in typed.model_dump().items() if k != "max_drop"}  # the plan's old dict form
    again = A.evaluate(A.WorkbenchLM(oracle, max_gen_toks=1), data_path=DATA, limit=6, gate=as_dict)
    assert again.gate == res.gate


def test_accuracy_metric_needs_accuracy_section(tiny_model):
    with pytest.raises(SpecError, match="add an `accuracy:` section"):
        validate_spec(
            small_study(tiny_model, constraints=[{"metric": "gsm8k_score", "max_drop_from_baseline": 2}])
        )


def test_study_measures_once_per_build_key_and_gates(tiny_model, tmp_path):
    from mlflow import MlflowClient

    from workbench.study import load_study, tune

    data = small_study(
        tiny_model,
        **{
            "workload.num_requests": 2,
            "workload.warmup_requests": 0,
            "workload.output_len": 2,
            "search_space.max_batch_size": {"choices": [2, 4]},
            "search_space.kv_cache_fraction": 0.9,
            "search_space.max_num_tokens": 1024,
            "search_space.quantization": {"choices": ["none", "int8"]},
            "search_space.page_size": 32,
            "sampler": {"name": "grid", "seed": 0},
            "trial.cpu_kv_budget_gb": 0.05,
        },
    )
    data["baseline"] = {"max_batch_size": 2, "max_num_tokens": 1024}
    data["accuracy"] = {"data_path": DATA, "limit": 6, "max_gen_toks": 2, "gate": {"chunk": 2}}
    data["constraints"] = [{"metric": "gsm8k_score", "max_drop_from_baseline": 1.0}]
    spec = validate_spec(data)
    storage, tracking = f"sqlite:///{tmp_path}/o.db", f"sqlite:///{tmp_path}/mlruns/m.db"
    tune(spec, storage=storage, tracking_uri=tracking, n_trials=5)
    study = load_study("t", storage)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    assert len(done) == 4
    base = done[0]
    assert base.user_attrs["baseline"] and base.user_attrs["metrics"]["gsm8k_n"] == 6
    keys = {t.number: t.user_attrs["accuracy_key"] for t in done}
    assert len(set(keys.values())) == 2  # none and int8
    c = MlflowClient(tracking_uri=tracking)
    for t in done:
        run = c.get_run(t.user_attrs["mlflow_run_id"])
        m = run.data.metrics
        assert {"gsm8k_strict", "gsm8k_flexible", "gsm8k_score", "gsm8k_n"} <= set(m)
        same_key_before = [o for o in done if o.number < t.number and keys[o.number] == keys[t.number]]
        if same_key_before:
            assert run.data.tags["gsm8k_reused_from_trial"] == str(same_key_before[0].number)
        else:
            arts = {a.path for a in c.list_artifacts(run.info.run_id, "trial")}
            assert "trial/gsm8k_samples.jsonl" in arts
        if not t.user_attrs.get("baseline"):
            # random weights score 0 = the baseline's 0: the gate passes, and says so
            assert run.data.tags["gsm8k_gate"].startswith("pass") and m["gsm8k_gate_passed"] == 1.0
            assert t.constraints["gsm8k_score>=baseline-1"] < 0
