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


def make_shape_tokenizer(shape_dir: str | Path, out_dir: str | Path) -> Path:
    """A tokenizer covering every token id of a model shape (`config.json` without weights).

    Random weights generate ids anywhere in the model's vocabulary. A smaller tokenizer (the tiny
    one) decodes ids past its end to no text, and a server streams nothing for them, so a stream of
    128 tokens arrives as one or two chunks and the client's TTFT and inter-token latency measure
    chunks, not tokens (seen on the H200, issue #14). This word-level tokenizer gives each id its own
    word (`t<id>`; the config's bos/eos ids are special tokens), so every generated token streams
    text and prompts decode and re-encode to the same ids.
    """
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    cfg = json.loads((Path(shape_dir) / "config.json").read_text())
    vocab_size = int(cfg["vocab_size"])
    bos = _first_id(cfg.get("bos_token_id"))
    eos = _first_id(cfg.get("eos_token_id"))
    special = {i: name for i, name in ((bos, "<s>"), (eos, "</s>")) if i is not None and i < vocab_size}
    vocab = {special.get(i, f"t{i}"): i for i in range(vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=special.get(eos, "t0")))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos in special:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=special.get(bos),
        eos_token=special.get(eos),
        pad_token=special.get(eos),
        padding_side="left",
    )
    fast.model_max_length = int(cfg.get("max_position_embeddings") or 4096)
    out = Path(out_dir)
    fast.save_pretrained(out)
    return out


def _first_id(value: object) -> int | None:
    """A config's token id, or the first of a list of them (Llama-3 lists several eos ids)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else None
