"""The recorded TensorRT-LLM 1.2.x API: names and types of everything the workbench passes, writes or parses.

tensorrt_llm cannot be installed where the workbench is developed and tested, so conformance is
checked against this snapshot (`tensorrt_llm-1.2.1.json`, with its sources inside), regenerated from
a real installation by `scripts/record_trtllm_api.py`. `check_kwargs` says whether arguments fit a
class; `strict_api` builds stand-ins from the snapshot that reject any name, type or enum member
1.2.x does not have, so the engine's object construction is exercised without tensorrt_llm.
"""

from __future__ import annotations

import enum
import functools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SNAPSHOT = Path(__file__).with_name("tensorrt_llm-1.2.1.json")
#: the PyTorch backend's arguments (TorchLlmArgs, CudaGraphConfig, ...), read from the public source
TORCH_SNAPSHOT = Path(__file__).with_name("tensorrt_llm-1.2.1-pytorch.json")


@functools.cache
def snapshot(path: str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or SNAPSHOT).read_text())


def torch_snapshot() -> dict[str, Any]:
    """The PyTorch-backend record, with the CLI and report of the main record (one trtllm-serve/-bench)."""
    snap = dict(snapshot(str(TORCH_SNAPSHOT)))
    main = snapshot()
    snap.setdefault("cli", main["cli"])
    snap.setdefault("report", main["report"])
    return snap


def _split(inner: str) -> list[str]:
    """Split "A,B[C,D],E" at top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _generic(t: str) -> tuple[str, list[str]]:
    if "[" in t and t.endswith("]"):
        head, _, rest = t.partition("[")
        return head, _split(rest[:-1])
    return t, []


def conforms(t: str, value: Any, snap: dict[str, Any] | None = None) -> bool:
    """Whether `value` is acceptable for a field recorded with type `t` (enum members by name)."""
    snap = snap or snapshot()
    head, args = _generic(t)
    if head == "Any":
        return True
    if head == "Optional":
        return value is None or conforms(args[0], value, snap)
    if head == "Union":
        return any(conforms(a, value, snap) for a in args)
    if head in ("Literal", "Choice"):
        return str(value) in args
    if head == "List":
        return isinstance(value, (list, tuple)) and all(conforms(args[0], v, snap) for v in value)
    if head == "Dict":
        return isinstance(value, dict)
    if head.startswith("enum:"):
        name = value.name if isinstance(value, enum.Enum) else value
        return isinstance(name, str) and name in snap["enums"][head[5:]]
    if head.startswith("model:"):
        cls = head[6:]
        if isinstance(value, _Strict):
            return type(value).__name__ == cls
        return isinstance(value, dict) and cls in snap["classes"] and not check_kwargs(cls, value, snap)
    if head == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if head == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if head == "bool":
        return isinstance(value, bool)
    if head in ("str", "Path"):
        return isinstance(value, (str, Path))
    if head == "flag":
        return value is True
    raise ValueError(f"unknown recorded type {t!r}")


def check_kwargs(cls: str, kwargs: dict[str, Any], snap: dict[str, Any] | None = None) -> list[str]:
    """Problems with passing `kwargs` to the recorded class `cls` (unknown names, wrong types); [] if none."""
    snap = snap or snapshot()
    if cls not in snap["classes"]:
        return [f"{cls} is not a recorded TensorRT-LLM class"]
    fields = snap["classes"][cls]["fields"]
    out = []
    for k, v in kwargs.items():
        if k not in fields:
            out.append(f"{cls} has no argument {k!r} in TensorRT-LLM {snap['tensorrt_llm_version']}")
        elif not conforms(fields[k]["type"], v, snap):
            out.append(f"{cls}.{k}={v!r} does not fit the recorded type {fields[k]['type']}")
    return out


def check_cli(
    command: str, flags: list[str], snap: dict[str, Any] | None = None, tool: str = "trtllm-bench"
) -> list[str]:
    """Problems with a recorded CLI's argument list: `command` is a subcommand or "" for the top level."""
    snap = snap or snapshot()
    spec = snap["cli"][tool]
    opts = spec["subcommands"][command] if command else spec["options"]
    out = []
    i = 0
    while i < len(flags):
        f = flags[i]
        opt = opts.get(f) or next((o for o in opts.values() if f in (o.get("short"), o.get("alias"))), None)
        if opt is None:
            out.append(f"{tool} {command or ''} has no option {f}".replace("  ", " "))
            i += 1
            continue
        if opt["type"] == "flag":
            i += 1
            continue
        if i + 1 >= len(flags):
            out.append(f"{f} needs a value")
            break
        raw = flags[i + 1]
        if not _cli_value_ok(opt["type"], raw):
            out.append(f"{f} {raw!r} does not fit the recorded type {opt['type']}")
        i += 2
    return out


def _cli_value_ok(t: str, raw: str) -> bool:
    head, args = _generic(t)
    if head == "Choice":
        return raw in args
    if head == "int":
        return raw.lstrip("-").isdigit()
    if head == "float":
        try:
            float(raw)
            return True
        except ValueError:
            return False
    if head == "bool":
        return raw.lower() in ("true", "false", "1", "0", "yes", "no")
    return head in ("str", "Path")


def report_paths(snap: dict[str, Any] | None = None) -> set[str]:
    """Every "block.key" of the recorded trtllm-bench report, plus "block.key.pct" for percentile dicts."""
    snap = snap or snapshot()
    out = set()
    for block, keys in snap["report"]["blocks"].items():
        for k in keys:
            out.add(f"{block}.{k}")
            if k.endswith(("percentiles", "percentiles_ms", "_stats")):
                out.update(f"{block}.{k}.{p}" for p in snap["report"]["percentile_keys"])
    return out


# ---------------------------------------------------------------------------- strict stand-ins
class _Strict:
    """An object of a recorded class: construction and assignment accept only recorded names and types."""

    _cls: str = ""
    _snap: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any):
        info = self._snap["classes"][self._cls]
        if args:
            if info.get("kw_only"):
                raise TypeError(f"{self._cls} takes keyword arguments only")
            names = list(info["fields"])
            kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
        problems = check_kwargs(self._cls, kwargs, self._snap)
        missing = [k for k, f in info["fields"].items() if f.get("required") and k not in kwargs]
        if problems or missing:
            raise TypeError("; ".join(problems + [f"{self._cls} needs {k!r}" for k in missing]))
        for k, f in info["fields"].items():
            default = f.get("default")
            if k in kwargs:
                object.__setattr__(self, k, kwargs[k])
            elif f["type"].startswith("model:") and f["type"][6:] in _STRICT_CLASSES:
                object.__setattr__(self, k, _STRICT_CLASSES[f["type"][6:]]())
            else:
                object.__setattr__(self, k, default)

    def __setattr__(self, k: str, v: Any) -> None:
        problems = check_kwargs(self._cls, {k: v}, self._snap)
        if problems:
            raise TypeError("; ".join(problems))
        object.__setattr__(self, k, v)

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for k in self._snap["classes"][self._cls]["fields"]:
            v = getattr(self, k)
            out[k] = v.as_dict() if isinstance(v, _Strict) else (v.name if isinstance(v, enum.Enum) else v)
        return out


_STRICT_CLASSES: dict[str, type[_Strict]] = {}


def strict_api(snap: dict[str, Any] | None = None) -> SimpleNamespace:
    """Stand-ins for the recorded classes and enums, to run the engine's object construction in tests."""
    snap = snap or snapshot()
    ns: dict[str, Any] = {}
    for name in snap["classes"]:
        cls = type(name, (_Strict,), {"_cls": name, "_snap": snap})
        _STRICT_CLASSES[name] = cls
        ns[name] = cls
    for name, members in snap["enums"].items():
        if name.isidentifier() and not name.isupper():
            ns[name] = enum.Enum(name, {m: m for m in members})
    return SimpleNamespace(**ns)
