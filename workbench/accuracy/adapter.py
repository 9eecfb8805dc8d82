"""lm-eval's view of a workbench engine: `WorkbenchLM`, an lm-eval model over any Runner.

It sends every generation request of a task to the Runner at once, so the engine batches them:
greedy, lm-eval's stop strings honoured, 256 new tokens unless the task says otherwise, only the
continuation returned. Registered with lm-eval as "workbench" (lm-eval's idiom), although the
workbench itself hands `simple_evaluate` an instance. Only evaluation imports this module, so it
imports lm-eval at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from workbench.engines.runner import Runner
from workbench.types import EngineError, Request, RequestRecord

_GENERATION_ONLY = "the workbench adapter runs generation tasks only (such as gsm8k)"


@register_model("workbench")
class WorkbenchLM(LM):
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
        raise NotImplementedError(_GENERATION_ONLY)

    def loglikelihood_rolling(self, requests: Any) -> Any:
        raise NotImplementedError(_GENERATION_ONLY)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.calls += 1
        reqs, stops = [], []
        for i, inst in enumerate(requests):
            context, gen_kwargs = inst.args
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            reqs.append(self._request(f"acc{self.calls}-{i}", context, gen_kwargs, until))
            stops.append(until)
        records = self.runner.generate(reqs)
        self.records.extend(records)
        out = [cut_at_stop(self._text(rec), until) for rec, until in zip(records, stops, strict=True)]
        if self.progress:
            self.progress(len(out))
        return out

    def _request(self, rid: str, context: str, gen_kwargs: dict[str, Any], until: list[str]) -> Request:
        max_new = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
        ids = self.tokenizer(context, add_special_tokens=self.add_special_tokens)["input_ids"]
        if self.max_input_len is not None:
            ids = ids[-self.max_input_len :]  # keep the question: drop the oldest few-shot text
        return Request(rid, ids, max_new, ignore_eos=False, stop=until)

    def _text(self, rec: RequestRecord) -> str:
        if rec.error:
            raise EngineError(f"a GSM8K request failed inside the engine: {rec.error}")
        if rec.text is not None:
            return rec.text
        return self.tokenizer.decode(rec.output_ids, skip_special_tokens=True)


def cut_at_stop(text: str, until: list[str]) -> str:
    """The text before the first stop string (engines without stop strings generate past them)."""
    cut = len(text)
    for s in until:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
