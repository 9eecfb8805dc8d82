"""A pool of loaded models kept between trials measured in one process (`workbench grid --reuse-model`).

Handed to engines through `OpenContext.model_pool`; engines without a pool load for every trial.
One model at a time: `clear()` frees the previous one (and the device's cached memory) before the
next is loaded, so a point's memory baseline never holds another configuration's weights.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


class ModelPool:
    def __init__(self) -> None:
        self._models: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self._models.get(key)

    def put(self, key: Any, model: Any) -> None:
        self._models[key] = model

    def clear(self) -> None:
        if not self._models:
            return
        self._models.clear()
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __len__(self) -> int:
        return len(self._models)
