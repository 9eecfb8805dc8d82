"""Content-addressed engine artifact cache: a build key is built once, and a partial build is never used.

An entry is `<root>/<engine>/<key>/` holding the artifact and a `manifest.json`. A build happens
in a temporary folder that is renamed into place only once complete, under an exclusive file lock,
so two workers asking for the same key build it once (the second waits, then reuses it) and a
folder left by a killed worker is recognised as partial and removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.engines.base import Artifact, BuildError

MANIFEST = "manifest.json"
#: packages whose versions shape every engine's outputs; an engine's own `packages` are added
KEY_PACKAGES = ("torch", "transformers", "torchao", "tensorrt_llm")


def build_key(material: dict[str, Any]) -> str:
    """A stable hash of everything that shapes an artifact."""
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def model_fingerprint(source: str, revision: str | None) -> dict[str, Any]:
    """Identity of the source weights: for a local folder its config and file sizes/times; for a hub id, id+revision."""
    p = Path(source)
    if not p.is_dir():
        return {"hub_id": source, "revision": revision or "main"}
    cfg = p / "config.json"
    files = sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns)
        for f in p.iterdir()
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".model", ".txt")
    )
    h = hashlib.sha256(cfg.read_bytes() if cfg.exists() else b"")
    h.update(json.dumps(files).encode())
    return {"path": str(p.resolve()), "content": h.hexdigest()[:20]}


def artifact_material(
    plan: Any, engine_cls: Any, build_knobs: dict[str, Any], versions: dict[str, str]
) -> dict[str, Any]:
    """Everything that shapes an artifact (and so the model's outputs): what the build key hashes.

    `versions` are the package versions of the environment the worker runs in (its launcher's)."""
    return {
        "engine": plan.engine,
        "engine_version": engine_cls.version,
        "model": model_fingerprint(plan.model_source, plan.model.revision),
        "dtype": plan.model.dtype,
        "load_format": plan.model.load_format,
        "build_knobs": engine_cls(plan.open_context()).build_material(build_knobs),
        "device_arch": plan.device.arch,
        "packages": {p: versions.get(p) for p in sorted({*KEY_PACKAGES, *engine_cls.packages})},
    }


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class EngineCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, engine: str, key: str) -> Path:
        return self.root / engine / key

    def lookup(self, engine: str, key: str) -> Artifact | None:
        d = self.entry(engine, key)
        m = d / MANIFEST
        if m.is_file():
            return Artifact(d, key, json.loads(m.read_text()), cache_hit=True)
        return None

    def get_or_build(
        self,
        engine: str,
        key: str,
        material: dict[str, Any],
        build: Callable[[Path], dict[str, Any]],
    ) -> Artifact:
        """Return the cached artifact for `key`, building it (once, under a lock) when absent."""
        hit = self.lookup(engine, key)
        if hit is not None:
            return hit
        base = self.root / engine
        base.mkdir(parents=True, exist_ok=True)
        with open(base / f"{key}.lock", "w") as lock:
            waited = time.perf_counter()
            fcntl.flock(lock, fcntl.LOCK_EX)
            waited = time.perf_counter() - waited
            hit = self.lookup(engine, key)  # another worker built it while we waited
            if hit is not None:
                return Artifact(hit.path, key, {**hit.manifest, "waited_for_lock_s": waited}, cache_hit=True)
            final = self.entry(engine, key)
            if final.exists():  # a folder without a manifest is partial: never use it
                shutil.rmtree(final)
            for stale in base.glob(f".tmp-{key}-*"):  # left by a killed worker
                shutil.rmtree(stale, ignore_errors=True)
            tmp = base / f".tmp-{key}-{os.getpid()}"
            tmp.mkdir()
            t0 = time.perf_counter()
            try:
                info = build(tmp) or {}
            except Exception as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise BuildError(f"building {engine} artifact {key} failed: {type(e).__name__}: {e}") from e
            manifest = {
                "build_key": key,
                "engine": engine,
                "key_material": material,
                "build_s": time.perf_counter() - t0,
                "size_bytes": dir_size(tmp),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **info,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
            os.rename(tmp, final)
            return Artifact(final, key, manifest, cache_hit=False)
