"""The generated fixture model loads through the Auto classes like any checkpoint."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_tiny_model_loads_with_auto_classes(tiny_model):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_model)
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 4 and cfg.max_position_embeddings == 4096
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "Question: Janet has 16 eggs and eats 3. How many are left?\nAnswer:"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id == 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 2) and len(tok) == cfg.vocab_size
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 1.0e6


def test_cli_writes_same_model_for_same_seed(tmp_path, tiny_model):
    out = tmp_path / "again"
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "make-tiny-model", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0 and "wrote a tiny random-weight Llama model" in p.stdout
    assert (out / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert (out / "tokenizer.json").read_text() == (tiny_model / "tokenizer.json").read_text()
