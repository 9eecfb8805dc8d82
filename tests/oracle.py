"""A test double for GSM8K: a Runner that answers a chosen set of questions correctly.

It proves the scoring plumbing end to end (the score must come out exactly as the chosen set says,
whatever the model) and gives the sequential-gate benchmark configurations of known accuracy. It
wraps a real runner, so every request still goes through a real engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workbench.engines.runner import Runner, RunnerStats
from workbench.types import Request, RequestRecord


class OracleRunner(Runner):
    """Wraps a runner and answers a chosen set of GSM8K questions correctly (and the rest wrongly).

    Questions are recognised from the last "Question: ..." of the prompt.
    """

    def __init__(self, inner: Runner, answers: dict[str, str], correct: set[str]):
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.vocab_size = inner.vocab_size
        self.resolved_config = inner.resolved_config
        self.answers = answers
        self.correct = correct
        self._prompts: dict[str, str] = {}

    def stats(self) -> RunnerStats:
        return self.inner.stats()

    def refresh_stats(self) -> None:
        self.inner.refresh_stats()

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
