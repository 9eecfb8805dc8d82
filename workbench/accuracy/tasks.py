"""lm-eval's stock GSM8K task configs, pointed at local JSONL files when the study says so.

The configs are lm-eval's own YAML files, read through lm-eval's public `TaskManager` scoped to its
`gsm8k` folder (`include_defaults=False`): the same dict the full index holds, without scanning the
thousands of other task files (about 7 s here). `simple_evaluate` is handed the same scoped manager,
so no chunk of an evaluation pays for that scan either. lm-eval is imported inside the functions that
need it: the error, the task names and `num_test_docs` stay importable in any environment.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from workbench.types import InputError

#: the GSM8K variants lm-eval ships, by task name, with their YAML file in lm-eval's `gsm8k` folder
TASK_FILES = {
    "gsm8k": "gsm8k.yaml",
    "gsm8k_cot": "gsm8k-cot.yaml",
    "gsm8k_cot_zeroshot": "gsm8k-cot-zeroshot.yaml",
    "gsm8k_cot_llama": "gsm8k-cot-llama.yaml",
}
#: the two answer extractions every GSM8K variant scores (their mean x 100 is TensorRT-LLM's score)
FILTERS = ("strict-match", "flexible-extract")
#: openai/gsm8k "main", test split
HUB_TEST_DOCS = 1319


class AccuracyDataError(InputError):
    """GSM8K data cannot be found: the message names the options."""


def task_manager() -> Any:
    """lm-eval's TaskManager over its own gsm8k folder only (what `simple_evaluate` would build, minus the scan)."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    folder = Path(lm_eval.tasks.__file__).parent / "gsm8k"
    return TaskManager(include_path=folder, include_defaults=False, metadata={})


def task_config(
    task: str = "gsm8k", data_path: str | Path | None = None, manager: Any = None
) -> dict[str, Any]:
    """lm-eval's stock task config, pointed at local JSONL files when `data_path` is given."""
    if task not in TASK_FILES:
        raise AccuracyDataError(f"unknown task {task!r}; supported: {', '.join(TASK_FILES)}")
    cfg = copy.deepcopy((manager or task_manager()).task_index[task].cfg)
    cfg.pop("tag", None)
    if data_path is not None:
        cfg.update(_local_data(Path(data_path).expanduser()))
    return cfg


def _local_data(d: Path) -> dict[str, Any]:
    """The config keys that read train.jsonl and test.jsonl from a folder instead of the hub."""
    files = {split: d / f"{split}.jsonl" for split in ("train", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise AccuracyDataError(
            f"GSM8K data not found: {', '.join(missing)}. Set accuracy.data_path to a folder holding "
            "train.jsonl and test.jsonl (the openai/grade-school-math files), or leave it unset to load "
            "openai/gsm8k from the Hugging Face hub."
        )
    return {
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {k: str(v.resolve()) for k, v in files.items()}},
    }


def num_test_docs(data_path: str | Path | None) -> int:
    """How many test questions the data holds (the hub's test split has 1319)."""
    if data_path is None:
        return HUB_TEST_DOCS
    with open(Path(data_path) / "test.jsonl") as f:
        return sum(1 for line in f if line.strip())


def hub_error(e: Exception, data_path: str | Path | None) -> AccuracyDataError | None:
    """The clear error for a failed hub download (None when `e` is something else, or data is local)."""
    text = str(e).lower()
    if data_path is not None or not any(w in text for w in ("hub", "connect", "offline")):
        return None
    return AccuracyDataError(
        f"could not load openai/gsm8k from the Hugging Face hub ({type(e).__name__}: {e}). "
        "Set accuracy.data_path to a folder holding train.jsonl and test.jsonl."
    )
