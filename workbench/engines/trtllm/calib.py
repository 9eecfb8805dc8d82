"""Calibration data of a quantized build: where it is, what it holds (a content hash), and its texts.

A study names `engine_options.calib_dataset` relative to the study file (like every path in a study),
so the same study runs from any working directory and inside a container. The build key holds the
data's content hash and size, never its path: editing a calibration file rebuilds, moving the folder
does not. Hub data is used only where the study allows it (`calib_allow_hub: true`), because a
build that silently downloads a dataset cannot be reproduced offline.

TensorRT backend: TensorRT-LLM 1.2.x's own loader (`quantize_by_modelopt.get_calib_dataloader`)
accepts only `pileval`, names containing `cnn_dailymail` or `scienceqa`, or an existing directory;
anything else raises "Unsupported dataset name or local repo directory" minutes into a build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.types import InputError

#: the hub names TensorRT-LLM 1.2.x's TensorRT-backend calibration loader understands
TRT_HUB_NAMES = ("pileval", "cnn_dailymail", "scienceqa")
DEFAULT_HUB = "cnn_dailymail"
TEXT_SUFFIXES = (".jsonl", ".json", ".txt")


class CalibError(InputError):
    """The calibration data cannot be used (missing, not allowed from the hub, wrong shape)."""


@dataclass(frozen=True)
class CalibSource:
    """Resolved calibration data: a local file/folder (absolute) or a hub name."""

    kind: str  # "local" or "hub"
    location: str
    content_sha256: str | None = None
    size_bytes: int | None = None

    def key(self) -> dict[str, Any]:
        """What the build key holds: content and size for local data (never the path), the name for hub data."""
        if self.kind == "hub":
            return {"hub": self.location}
        return {"sha256": self.content_sha256, "size_bytes": self.size_bytes}


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))


def content_hash(path: Path) -> tuple[str, int]:
    """sha256 over (name relative to the data's root, bytes) of every file, and the total size."""
    h = hashlib.sha256()
    size = 0
    for f in _files(path):
        rel = f.name if path.is_file() else f.relative_to(path).as_posix()
        data = f.read_bytes()
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
        size += len(data)
    return h.hexdigest(), size


def resolve(options: Any, study_dir: str | None) -> CalibSource:
    """The calibration data of these validated engine options (any engine's whose model has the
    `calib_*` fields: trtllm's, vllm's), a relative path taken from the study file's folder."""
    name = options.calib_dataset
    allow_hub = options.calib_allow_hub
    if name is None:
        if not allow_hub:
            raise CalibError(
                "engine_options.calib_dataset is not set: name a local folder or JSONL file (relative to "
                "the study file), or set calib_allow_hub: true to calibrate on cnn_dailymail from the hub"
            )
        return CalibSource("hub", DEFAULT_HUB)
    p = Path(name).expanduser()
    if not p.is_absolute() and study_dir is not None:
        p = Path(study_dir) / p
    if p.exists():
        digest, size = content_hash(p)
        if size == 0:
            raise CalibError(f"engine_options.calib_dataset: {p} holds no data")
        return CalibSource("local", str(p.resolve()), digest, size)
    looks_local = name.startswith((".", "/", "~")) or name.endswith(TEXT_SUFFIXES)
    if looks_local or not allow_hub:
        raise CalibError(
            f"engine_options.calib_dataset: {p} does not exist (a relative path is taken from the study "
            "file's folder)" + ("" if looks_local else "; a hub dataset needs calib_allow_hub: true")
        )
    return CalibSource("hub", name)


def trt_dataset_argument(src: CalibSource) -> str:
    """What CalibConfig.calib_dataset gets on the TensorRT backend: an absolute folder or a known hub name."""
    if src.kind == "hub":
        if not any(n in src.location for n in TRT_HUB_NAMES):
            raise CalibError(
                f"engine_options.calib_dataset: TensorRT-LLM 1.2.x's TensorRT-backend calibration takes only "
                f"{', '.join(TRT_HUB_NAMES)} from the hub (or a local folder), not {src.location!r}"
            )
        return src.location
    if not Path(src.location).is_dir():
        raise CalibError(
            f"engine_options.calib_dataset: the TensorRT backend's loader takes a folder (a dataset "
            f"directory), not the file {src.location}; put it in a folder"
        )
    return src.location


def _records(f: Path, field: str) -> list[str]:
    if f.suffix == ".txt":
        return [ln for ln in f.read_text().splitlines() if ln.strip()]
    text = f.read_text()
    rows = (
        json.loads(text) if f.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    )
    out = []
    for i, r in enumerate(rows if isinstance(rows, list) else [rows]):
        if not isinstance(r, dict) or not isinstance(r.get(field), str):
            raise CalibError(
                f"{f}: record {i + 1} has no text field {field!r} (engine_options.calib_text_field)"
            )
        out.append(r[field])
    return out


def load_texts(src: CalibSource, n: int, field: str = "text") -> list[str]:
    """Up to `n` calibration texts: local JSONL/JSON/TXT files (sorted by name), or a hub dataset."""
    if src.kind == "hub":
        return _hub_texts(src.location, n)
    files = [f for f in _files(Path(src.location)) if f.suffix in TEXT_SUFFIXES]
    if not files:
        return _saved_dataset_texts(Path(src.location), n, field)
    texts: list[str] = []
    for f in files:
        texts.extend(_records(f, field))
        if len(texts) >= n:
            break
    if not texts:
        raise CalibError(f"engine_options.calib_dataset: no text in {src.location}")
    return texts[:n]


def _saved_dataset_texts(path: Path, n: int, field: str) -> list[str]:
    """A `datasets` folder written by save_to_disk (its train split when it has splits)."""
    from datasets import load_from_disk

    ds = load_from_disk(str(path))
    if hasattr(ds, "keys"):
        ds = ds["train"] if "train" in ds else ds[next(iter(ds.keys()))]
    return [str(t) for t in ds[field][:n]]


def _hub_texts(name: str, n: int) -> list[str]:
    from datasets import load_dataset

    if "cnn_dailymail" in name:
        ds = load_dataset("cnn_dailymail", "3.0.0", split="train")
        return [str(t) for t in ds["article"][:n]]
    ds = load_dataset(name, split="train")
    col = "text" if "text" in ds.column_names else ds.column_names[0]
    return [str(t) for t in ds[col][:n]]
