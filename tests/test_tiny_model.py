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


def test_shape_tokenizer_gives_every_token_id_its_own_text(tmp_path):
    """Random weights generate any id of the model's vocabulary; each must stream text (issue #14:
    the tiny tokenizer left 99 % of Llama-3.1-8B's ids silent, and a server's stream came in bursts)."""
    from tokenizers.decoders import DecodeStream
    from transformers import AutoTokenizer

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "make-shape-tokenizer",
            "studies/shapes/llama-3.1-8b",
            str(tmp_path / "tok"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert len(tok) == 128_256 and (tok.bos_token_id, tok.eos_token_id) == (128_000, 128_001)
    ids = [3, 1024, 70_000, 127_999, 128_255]
    assert tok(tok.decode(ids), add_special_tokens=False)["input_ids"] == ids  # prompts round-trip
    stream = DecodeStream([], skip_special_tokens=True)
    assert [stream.step(tok._tokenizer, i) for i in ids] == [
        "t3",
        " t1024",
        " t70000",
        " t127999",
        " t128255",
    ]


def test_shape_tokenizer_rejects_a_folder_without_config(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "make-shape-tokenizer", str(tmp_path), str(tmp_path / "t")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 2 and "config.json" in p.stderr and p.stderr.count("\n") == 1
