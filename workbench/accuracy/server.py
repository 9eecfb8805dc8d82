"""GSM8K against a server engine through lm-eval's own `local-completions` client.

Same protocol as in-process (the task, few-shot seed, greedy, `max_gen_toks`, lm-eval's stop strings,
left truncation to `max_input_len` tokens, BOS added as the in-process adapter does), only the model
is lm-eval's OpenAI completions client pointed at the trial's server, so the accuracy gate is unchanged.
Servers that take text prompts (transformers serve) tokenize themselves; the others get token ids.
"""

from __future__ import annotations

from typing import Any

from workbench.engines.runner import ServerHandle


def server_lm(
    server: ServerHandle, tokenizer: Any, max_gen_toks: int, max_input_len: int, num_concurrent: int = 8
) -> Any:
    """lm-eval's `local-completions` model for an opened server (`Runner.server()`) and its tokenizer."""
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    return LocalCompletionsAPI(
        base_url=server.base_url + "/v1/completions",
        model=server.model,
        tokenizer=str(getattr(tokenizer, "name_or_path", "")) or None,
        tokenizer_backend="huggingface",
        tokenized_requests=server.token_prompts,
        add_bos_token=True,
        num_concurrent=num_concurrent,
        batch_size=1,
        max_gen_toks=max_gen_toks,
        max_length=max_input_len + max_gen_toks,
        max_retries=1,
        timeout=int(server.request_timeout_s),
    )
