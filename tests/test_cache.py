"""The engine cache builds a key once, even for two processes at once, and never uses a partial build."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from workbench.engines.base import BuildError
from workbench.trials.cache import EngineCache, build_key, model_fingerprint


def _build_counting(out: Path, counter: Path, delay: float = 0.0) -> dict:
    with open(counter, "a") as f:
        f.write("built\n")
    time.sleep(delay)
    (out / "weights.bin").write_bytes(b"x" * 100)
    return {"steps_s": {"quantize": delay}}


def test_build_once_then_hit(tmp_path):
    cache = EngineCache(tmp_path / "c")
    counter = tmp_path / "count"
    a = cache.get_or_build("hf", "k1", {"q": "int8"}, lambda out: _build_counting(out, counter))
    b = cache.get_or_build("hf", "k1", {"q": "int8"}, lambda out: _build_counting(out, counter))
    assert counter.read_text().count("built") == 1
    assert not a.cache_hit and b.cache_hit and a.path == b.path
    assert b.manifest["size_bytes"] == 100 and b.manifest["key_material"] == {"q": "int8"}


def _worker(root: str, counter: str, q: mp.Queue) -> None:
    art = EngineCache(root).get_or_build(
        "hf", "shared", {}, lambda out: _build_counting(out, Path(counter), 1.0)
    )
    q.put(art.cache_hit)


def test_two_processes_one_build(tmp_path):
    counter = tmp_path / "count"
    q: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_worker, args=(str(tmp_path / "c"), str(counter), q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert counter.read_text().count("built") == 1
    assert sorted([q.get(), q.get()]) == [False, True]


def test_partial_build_is_rebuilt(tmp_path):
    cache = EngineCache(tmp_path / "c")
    # what a killed worker leaves: a temporary folder, and a final folder without a manifest
    stale = tmp_path / "c" / "hf" / ".tmp-k2-999999"
    stale.mkdir(parents=True)
    (tmp_path / "c" / "hf" / "k2").mkdir()
    (tmp_path / "c" / "hf" / "k2" / "half.bin").write_bytes(b"x")
    assert cache.lookup("hf", "k2") is None
    counter = tmp_path / "count"
    art = cache.get_or_build("hf", "k2", {}, lambda out: _build_counting(out, counter))
    assert not art.cache_hit and counter.read_text().count("built") == 1
    assert not stale.exists() and not (art.path / "half.bin").exists()


def test_failed_build_leaves_nothing(tmp_path):
    cache = EngineCache(tmp_path / "c")

    def boom(out: Path) -> dict:
        (out / "partial").write_text("x")
        raise RuntimeError("calibration failed")

    with pytest.raises(BuildError, match="calibration failed"):
        cache.get_or_build("hf", "k3", {}, boom)
    assert cache.lookup("hf", "k3") is None
    assert not list((tmp_path / "c" / "hf").glob(".tmp-k3-*"))


def test_key_and_fingerprint(tmp_path, tiny_model):
    assert build_key({"a": 1, "b": [1, 2]}) == build_key({"b": [1, 2], "a": 1})
    assert build_key({"a": 1}) != build_key({"a": 2})
    fp = model_fingerprint(str(tiny_model), None)
    assert fp["path"] == str(tiny_model.resolve()) and len(fp["content"]) == 20
    assert model_fingerprint("meta-llama/Llama-3.1-8B", None) == {
        "hub_id": "meta-llama/Llama-3.1-8B",
        "revision": "main",
    }
