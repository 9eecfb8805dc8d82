"""A tiny random-weight Llama-style model with a locally trained tokenizer, for tests and demos.

Model hubs are unreachable on our machines, so the project makes its own fixture: it loads through
the same Auto classes and code path as a real model. Its outputs are meaningless (random weights);
it exists to exercise the machinery, not to score.
"""

from __future__ import annotations

import random
from pathlib import Path

_WORDS = [
    "she",
    "he",
    "they",
    "buys",
    "sells",
    "makes",
    "eats",
    "gives",
    "has",
    "had",
    "bakes",
    "earns",
    "spends",
    "saves",
    "needs",
    "each",
    "every",
    "day",
    "week",
    "apples",
    "eggs",
    "dollars",
    "cookies",
    "books",
    "pens",
    "marbles",
    "boxes",
    "friends",
    "hours",
    "minutes",
    "miles",
    "cents",
    "total",
    "left",
    "more",
    "than",
    "twice",
    "half",
    "how",
    "many",
    "much",
    "does",
    "did",
    "will",
    "if",
    "and",
    "the",
    "a",
    "of",
    "for",
    "per",
    "at",
    "in",
    "on",
    "is",
    "are",
    "was",
    "were",
    "then",
    "so",
    "Question",
    "Answer",
    "Janet",
    "ducks",
    "farmers",
    "market",
    "store",
    "price",
    "cost",
    "profit",
    "remainder",
]


def _sentences(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
        nums = [str(rng.randint(0, 999)) for _ in range(rng.randint(1, 4))]
        for x in nums:
            words.insert(rng.randrange(len(words)), x)
        s = " ".join(words)
        out.append(
            f"Question: {s}?\nAnswer: {rng.choice(_WORDS)} {nums[0]} = <<{nums[0]}>>{nums[0]}\n#### {nums[-1]}"
        )
    return out


def make_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 1024,
    hidden_size: int = 128,
    num_layers: int = 4,
    max_position_embeddings: int = 4096,
) -> Path:
    """Write the model and tokenizer to `out_dir`; return the directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_sentences(5000, rng), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )
    fast.model_max_length = max_position_embeddings
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 3,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = 0
    model.save_pretrained(out)
    return out


def ensure_tiny_model(path: str | Path) -> Path:
    """The tiny model at `path`, made there first if it is not (notebooks and the demo call this)."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    return make_tiny_model(path)
