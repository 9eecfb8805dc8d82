"""GSM8K accuracy through lm-eval, on any workbench engine runner.

`WorkbenchLM` is an lm-eval model (registered as "workbench") that sends every generation request
of a task to a Runner at once, so the engine batches them: greedy, lm-eval's stop strings honoured,
256 new tokens unless the task says otherwise, only the continuation returned. `evaluate` runs
lm-eval's stock gsm8k task with TensorRT-LLM's protocol by default (5-shot, few-shot seed 0, no chat
template, score = mean of strict-match and flexible-extract x 100), from the hub or local JSONL.
The gate is TensorRT-LLM's one-tailed test; `evaluate` can stop early once the gate is decided.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engines.base import Request, RequestRecord, Runner

TASK_FILES = {
    "gsm8k": "gsm8k.yaml",
    "gsm8k_cot": "gsm8k-cot.yaml",
    "gsm8k_cot_zeroshot": "gsm8k-cot-zeroshot.yaml",
    "gsm8k_cot_llama": "gsm8k-cot-llama.yaml",
}
FILTERS = ("strict-match", "flexible-extract")


class AccuracyDataError(ValueError):
    """GSM8K data cannot be found: the message names the options."""


# ------------------------------------------------------------------------------------ the lm-eval model
def _lm_base() -> type:
    from lm_eval.api.model import LM

    return LM


class WorkbenchLM(_lm_base()):  # type: ignore[misc]
    """lm-eval's view of a workbench engine. Generation tasks only (loglikelihood is not offered)."""

    def __init__(
        self,
        runner: Runner,
        max_gen_toks: int = 256,
        max_input_len: int | None = 4096,
        add_special_tokens: bool = True,
        progress: Callable[[int], None] | None = None,
    ):
        super().__init__()
        self.runner = runner
        self.tokenizer = runner.tokenizer
        self.max_gen_toks = max_gen_toks
        self.max_input_len = max_input_len
        self.add_special_tokens = add_special_tokens
        self.progress = progress
        self.calls = 0
        self.records: list[RequestRecord] = []

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "workbench")).replace("/", "__")

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def loglikelihood(self, requests: Any) -> Any:
        raise NotImplementedError("the workbench adapter runs generation tasks only (such as gsm8k)")

    def loglikelihood_rolling(self, requests: Any) -> Any:
        raise NotImplementedError("the workbench adapter runs generation tasks only (such as gsm8k)")

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.calls += 1
        reqs, stops = [], []
        for i, inst in enumerate(requests):
            context, gen_kwargs = inst.args
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
            ids = self.tokenizer(context, add_special_tokens=self.add_special_tokens)["input_ids"]
            if self.max_input_len is not None:
                ids = ids[-self.max_input_len :]  # keep the question: drop the oldest few-shot text
            reqs.append(Request(f"acc{self.calls}-{i}", ids, max_new, ignore_eos=False, stop=until))
            stops.append(until)
        records = self.runner.generate(reqs)
        self.records.extend(records)
        out = []
        for rec, until in zip(records, stops, strict=True):
            if rec.error:
                from workbench.engines.base import EngineError

                raise EngineError(f"a GSM8K request failed inside the engine: {rec.error}")
            text = (
                rec.text
                if rec.text is not None
                else self.tokenizer.decode(rec.output_ids, skip_special_tokens=True)
            )
            out.append(cut_at_stop(text, until))
        if self.progress:
            self.progress(len(out))
        return out


def cut_at_stop(text: str, until: list[str]) -> str:
    """The text before the first stop string (engines without stop strings generate past them)."""
    cut = len(text)
    for s in until:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def _register() -> None:
    from lm_eval.api.registry import register_model

    with contextlib.suppress(AssertionError, ValueError):  # already registered in this process
        register_model("workbench")(WorkbenchLM)


_register()


# ------------------------------------------------------------------------------------------ the task
def task_config(task: str = "gsm8k", data_path: str | Path | None = None) -> dict[str, Any]:
    """lm-eval's stock task config, pointed at local JSONL files when `data_path` is given."""
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    if task not in TASK_FILES:
        raise AccuracyDataError(f"unknown task {task!r}; supported: {', '.join(TASK_FILES)}")
    cfg = load_yaml(Path(lm_eval.tasks.__file__).parent / "gsm8k" / TASK_FILES[task])
    cfg.pop("tag", None)
    if data_path is not None:
        d = Path(data_path).expanduser()
        files = {split: d / f"{split}.jsonl" for split in ("train", "test")}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise AccuracyDataError(
                f"GSM8K data not found: {', '.join(missing)}. Set accuracy.data_path to a folder holding "
                "train.jsonl and test.jsonl (the openai/grade-school-math files), or leave it unset to load "
                "openai/gsm8k from the Hugging Face hub."
            )
        cfg.update(
            dataset_path="json",
            dataset_name=None,
            dataset_kwargs={"data_files": {k: str(v.resolve()) for k, v in files.items()}},
        )
    return cfg


def num_test_docs(data_path: str | Path | None) -> int:
    if data_path is None:
        return 1319  # openai/gsm8k main, test split
    with open(Path(data_path) / "test.jsonl") as f:
        return sum(1 for line in f if line.strip())


from workbench.accuracy.gate import (  # noqa: E402, F401 - the statistics live in one place
    gate_threshold,
    min_detectable_effect,
    sequential_decision,
    z,  # noqa: F401 - re-exported
)


# -------------------------------------------------------------------------------------- evaluation
@dataclass
class AccuracyResult:
    task: str
    n: int
    n_total: int
    strict: float  # fractions 0..1
    flexible: float
    strict_stderr: float
    flexible_stderr: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    seconds: float = 0.0
    lm_eval_config: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """TensorRT-LLM's GSM8K score: mean of the two filters, x 100."""
        return (self.strict + self.flexible) / 2 * 100

    def metrics(self) -> dict[str, float]:
        m = {
            "gsm8k_strict": self.strict,
            "gsm8k_flexible": self.flexible,
            "gsm8k_score": self.score,
            "gsm8k_strict_stderr": self.strict_stderr,
            "gsm8k_flexible_stderr": self.flexible_stderr,
            "gsm8k_n": float(self.n),
            "gsm8k_s": self.seconds,
        }
        if self.gate is not None:
            m["gsm8k_gate_passed"] = float(self.gate["decision"] == "pass")
            m["gsm8k_gate_threshold"] = self.gate["threshold"]
        return m


def _mean_stderr(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return mean, sd / math.sqrt(n)


def evaluate(
    lm: Any,
    *,
    task: str = "gsm8k",
    data_path: str | Path | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    fewshot_seed: int = 0,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = False,
    gate: dict[str, Any] | None = None,
    chunk: int = 100,
    on_chunk: Callable[[int, int], None] | None = None,
) -> AccuracyResult:
    """Score `lm` on GSM8K. With `gate` ({baseline, max_drop, alpha, beta, sigma, sequential}), the
    test set is evaluated in chunks and stops once the gate is clearly passed or failed."""
    import lm_eval

    t0 = time.perf_counter()
    cfg = task_config(task, data_path)
    n_total = min(limit or num_test_docs(data_path), num_test_docs(data_path))
    sequential = bool(gate and gate.get("sequential", True))
    looks = max(1, math.ceil(n_total / chunk)) if sequential else 1
    threshold = None
    if gate:
        threshold = gate_threshold(
            gate["baseline"],
            n_total,
            gate.get("alpha", 0.05),
            gate.get("sigma", 50.0),
            gate.get("max_drop", 0.0),
        )
    per_doc: dict[int, dict[str, float]] = {}
    samples: list[dict[str, Any]] = []
    decision = None
    looked = 0
    for start in range(0, n_total, chunk if sequential else n_total):
        ids = list(range(start, min(start + (chunk if sequential else n_total), n_total)))
        try:
            res = lm_eval.simple_evaluate(
                model=lm,
                tasks=[dict(cfg)],
                num_fewshot=num_fewshot,
                samples={cfg["task"]: ids},
                log_samples=True,
                apply_chat_template=apply_chat_template,
                fewshot_as_multiturn=fewshot_as_multiturn if apply_chat_template else False,
                fewshot_random_seed=fewshot_seed,
                random_seed=0,
                bootstrap_iters=0,
                verbosity="WARNING",
            )
        except Exception as e:
            if data_path is None and (
                "hub" in str(e).lower() or "connect" in str(e).lower() or "offline" in str(e).lower()
            ):
                raise AccuracyDataError(
                    f"could not load openai/gsm8k from the Hugging Face hub ({type(e).__name__}: {e}). "
                    "Set accuracy.data_path to a folder holding train.jsonl and test.jsonl."
                ) from e
            raise
        for s in res["samples"][cfg["task"]]:
            per_doc.setdefault(s["doc_id"], {})[s["filter"]] = float(s["exact_match"])
            samples.append(
                {
                    k: s[k]
                    for k in (
                        "doc_id",
                        "filter",
                        "exact_match",
                        "target",
                        "filtered_resps",
                        "resps",
                        "arguments",
                    )
                    if k in s
                }
            )
        looked += 1
        if on_chunk:
            on_chunk(len(per_doc), n_total)
        if threshold is not None and sequential and len(per_doc) < n_total:
            score = _score(per_doc)
            decision = sequential_decision(
                score, len(per_doc), threshold, looks, gate.get("alpha", 0.05), gate.get("sigma", 50.0)
            )
            if decision is not None:
                break
    strict, strict_se = _mean_stderr([d[FILTERS[0]] for d in per_doc.values()])
    flex, flex_se = _mean_stderr([d[FILTERS[1]] for d in per_doc.values()])
    out = AccuracyResult(
        task=cfg["task"],
        n=len(per_doc),
        n_total=n_total,
        strict=strict,
        flexible=flex,
        strict_stderr=strict_se,
        flexible_stderr=flex_se,
        samples=samples,
        seconds=time.perf_counter() - t0,
        lm_eval_config={
            "task": task,
            "num_fewshot": num_fewshot if num_fewshot is not None else cfg.get("num_fewshot"),
            "fewshot_seed": fewshot_seed,
            "apply_chat_template": apply_chat_template,
            "data": str(data_path) if data_path else "openai/gsm8k (hub)",
        },
    )
    if threshold is not None:
        final = decision or ("pass" if out.score >= threshold else "fail")
        out.gate = {
            "baseline": gate["baseline"],
            "max_drop": gate.get("max_drop", 0.0),
            "alpha": gate.get("alpha", 0.05),
            "beta": gate.get("beta", 0.2),
            "sigma": gate.get("sigma", 50.0),
            "n_planned": n_total,
            "n_used": out.n,
            "looks": looked,
            "stopped_early": decision is not None,
            "threshold": threshold,
            "score": out.score,
            "decision": final,
            "min_detectable_effect": min_detectable_effect(
                n_total, gate.get("alpha", 0.05), gate.get("beta", 0.2), gate.get("sigma", 50.0)
            ),
        }
    return out


def _score(per_doc: dict[int, dict[str, float]]) -> float:
    vals = list(per_doc.values())
    return sum(d[FILTERS[0]] + d[FILTERS[1]] for d in vals) / (2 * len(vals)) * 100


def write_samples(res: AccuracyResult, path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w") as f:
        for s in res.samples:
            f.write(json.dumps(s, default=str) + "\n")
    return path


# ------------------------------------------------------------------------------- the oracle wrapper
class OracleRunner(Runner):
    """Wraps a runner and answers a chosen set of GSM8K questions correctly (and the rest wrongly).

    It proves the scoring plumbing end to end: the score must come out exactly as the chosen set
    says, whatever the model. Questions are recognised from the last "Question: ..." of the prompt.
    """

    def __init__(self, inner: Runner, answers: dict[str, str], correct: set[str]):
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.vocab_size = inner.vocab_size
        self.resolved_config = inner.resolved_config
        self.answers = answers
        self.correct = correct
        self._prompts: dict[str, str] = {}

    def stats(self) -> Any:
        return self.inner.stats()

    def submit(self, request: Request) -> None:
        self._prompts[request.id] = self.tokenizer.decode(request.input_ids, skip_special_tokens=True)
        self.inner.submit(request)

    def collect(self, timeout: float) -> list[RequestRecord]:
        out = self.inner.collect(timeout)
        for rec in out:
            q = _last_question(self._prompts.pop(rec.id))
            final = self.answers.get(q, "0")
            rec.text = (
                f" The answer is {final}.\n#### {final}"
                if q in self.correct
                else " I do not know.\n#### 987654321"
            )
        return out

    def close(self) -> None:
        self.inner.close()


def _last_question(prompt: str) -> str:
    parts = re.split(r"Question:\s*", prompt)
    return parts[-1].rsplit("\nAnswer:", 1)[0].strip()


def gsm8k_answers(data_path: str | Path) -> dict[str, str]:
    """question -> final numeric answer, from a test.jsonl."""
    out = {}
    with open(Path(data_path) / "test.jsonl") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out[row["question"].strip()] = row["answer"].split("####")[-1].strip().replace(",", "")
    return out
