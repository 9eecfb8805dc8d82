"""Record the TensorRT-LLM API the workbench relies on, from an installed tensorrt_llm.

    python scripts/record_trtllm_api.py --out new.json [--compare]

Introspects the classes and enums named in the current snapshot (pydantic fields, dataclass fields,
enum members), the trtllm-bench / trtllm-serve click commands (option names, types, defaults) and
the trtllm-bench report keys (the dict keys in ReportUtility.get_statistics_dict's source), and
writes a snapshot in the same format as workbench/engines/trtllm_api/tensorrt_llm-1.2.1.json.
`--compare` prints what differs from the committed snapshot. Run it on a GPU machine or inside
NVIDIA's TensorRT-LLM release container; the conformance tests then run against the new file.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import importlib
import inspect
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.engines.trtllm.api import SNAPSHOT, TORCH_SNAPSHOT  # noqa: E402


def type_str(ann: Any) -> str:
    """An annotation in the snapshot's type grammar (Optional[..], List[..], Literal[..], enum:X, model:X)."""
    if ann is type(None):
        return "None"
    if ann is Any or ann is object:
        return "Any"
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return "Literal[" + ",".join(str(a) for a in args) + "]"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        rest = [a for a in args if a is not type(None)]
        inner = type_str(rest[0]) if len(rest) == 1 else "Union[" + ",".join(type_str(a) for a in rest) + "]"
        return f"Optional[{inner}]" if len(rest) < len(args) else inner
    if origin in (list, typing.List, tuple, typing.Tuple):  # noqa: UP006
        return f"List[{type_str(args[0]) if args else 'Any'}]"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "Dict[" + ",".join(type_str(a) for a in args) + "]" if args else "Dict[str,Any]"
    if isinstance(ann, type):
        if issubclass(ann, bool):
            return "bool"
        if issubclass(ann, enum.Enum):
            return f"enum:{ann.__name__}"
        if issubclass(ann, int):
            return "int"
        if issubclass(ann, float):
            return "float"
        if issubclass(ann, str):
            return "str"
        if issubclass(ann, Path):
            return "Path"
        if hasattr(ann, "model_fields") or dataclasses.is_dataclass(ann):
            return f"model:{ann.__name__}"
    return "Any"


def _default(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return None


def record_class(cls: type) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if hasattr(cls, "model_fields"):
        for name, f in cls.model_fields.items():
            entry: dict[str, Any] = {"type": type_str(f.annotation)}
            if f.is_required():
                entry["required"] = True
            else:
                entry["default"] = _default(f.default)
            fields[name] = entry
        extra = (getattr(cls, "model_config", {}) or {}).get("extra")
        return {"kind": "pydantic", **({"extra": extra} if extra else {}), "fields": fields}
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            entry = {"type": type_str(hints.get(f.name, Any))}
            if f.default is not dataclasses.MISSING:
                entry["default"] = _default(f.default)
            elif f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                entry["required"] = True
            fields[f.name] = entry
        kw_only = getattr(cls, "__dataclass_params__", None)
        return {"kind": "dataclass", "kw_only": bool(getattr(kw_only, "kw_only", False)), "fields": fields}
    sig = inspect.signature(cls)
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        fields[name] = {"type": type_str(p.annotation) if p.annotation is not p.empty else "Any"}
    return {"kind": "class", "fields": fields}


def click_type(opt: Any) -> str:
    import click

    t = opt.type
    if getattr(opt, "is_flag", False):
        return "flag"
    if isinstance(t, click.Choice):
        return "Choice[" + ",".join(map(str, t.choices)) + "]"
    name = getattr(t, "name", "")
    return {
        "integer": "int",
        "integer range": "int",
        "float": "float",
        "boolean": "bool",
        "path": "Path",
    }.get(name, "str")


def record_click(cmd: Any) -> dict[str, Any]:
    out = {}
    for p in cmd.params:
        if not p.opts:
            continue
        longs = [o for o in p.opts + list(p.secondary_opts or []) if o.startswith("--")]
        shorts = [o for o in p.opts if not o.startswith("--")]
        for name in longs:
            entry: dict[str, Any] = {"type": "flag" if name in (p.secondary_opts or []) else click_type(p)}
            entry["default"] = _default(p.default)
            if shorts:
                entry["short"] = shorts[0]
            if getattr(p, "required", False):
                entry["required"] = True
            if entry["type"] == "bool":
                entry["takes_value"] = True
            out[name] = entry
    return out


def serve_command(main: Any) -> Any:
    """The click command holding trtllm-serve's options.

    `tensorrt_llm.commands.serve.main` is a `DefaultGroup` without options of its own; `trtllm-serve MODEL`
    resolves to its `serve` subcommand, where the options live (serve.py's DefaultGroup.resolve_command)."""
    commands = getattr(main, "commands", None) or {}
    return commands.get("serve", main)


def report_keys() -> dict[str, list[str]]:
    """The literal keys of get_statistics_dict's dicts, by top-level block (read from the installed source)."""
    mod = importlib.import_module("tensorrt_llm.bench.dataclasses.reporting")
    src = textwrap.dedent(inspect.getsource(mod.ReportUtility.get_statistics_dict))
    tree = ast.parse(src)
    blocks: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=False):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Dict):
                    blocks.setdefault(k.value, set()).update(
                        kk.value for kk in v.keys if isinstance(kk, ast.Constant)
                    )
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            t = node.targets[0]
            if (
                isinstance(t.value, ast.Subscript)
                and isinstance(t.value.slice, ast.Constant)
                and isinstance(t.slice, ast.Constant)
            ):
                blocks.setdefault(t.value.slice.value, set()).add(t.slice.value)
    return {b: sorted(k) for b, k in blocks.items()}


def record(old: dict[str, Any]) -> dict[str, Any]:
    import tensorrt_llm

    snap: dict[str, Any] = {
        "schema": old["schema"],
        "tensorrt_llm_version": tensorrt_llm.__version__,
        "recorded": __import__("datetime").date.today().isoformat(),
        "method": "recorded by scripts/record_trtllm_api.py from an installed tensorrt_llm",
        "sources": {"all": f"introspection of tensorrt_llm {tensorrt_llm.__version__}"},
        "imports": old["imports"],
        "llm": old.get("llm"),
        "classes": {},
        "enums": {},
    }
    for name in old["classes"]:
        module = old["classes"][name].get("import", [old["imports"].get(name, "tensorrt_llm.llmapi")])
        module = module[0] if isinstance(module, list) else module
        cls = getattr(importlib.import_module(module), name)
        snap["classes"][name] = {"import": [module], **record_class(cls)}
    for name in old["enums"]:
        try:
            obj = getattr(importlib.import_module(old["imports"].get(name, "tensorrt_llm.llmapi")), name)
        except (ImportError, AttributeError):
            obj = None
        if name == "KV_CACHE_QUANT_ALGO_LIST":
            from tensorrt_llm.quantization.mode import KV_CACHE_QUANT_ALGO_LIST

            snap["enums"][name] = [a.name for a in KV_CACHE_QUANT_ALGO_LIST]
        elif obj is None:
            for mod in (
                "tensorrt_llm.llmapi",
                "tensorrt_llm.llmapi.llm_args",
                "tensorrt_llm.quantization.mode",
                "tensorrt_llm.builder",
                "tensorrt_llm.models.modeling_utils",
            ):
                obj = getattr(importlib.import_module(mod), name, None)
                if obj is not None:
                    break
        if obj is not None and name != "KV_CACHE_QUANT_ALGO_LIST":
            snap["enums"][name] = [m.name for m in obj]
    if old.get("backend") == "pytorch":  # the PyTorch-backend record: classes and enums only
        return {**snap, "backend": "pytorch", "hf_quant_config": old.get("hf_quant_config")}
    from tensorrt_llm.commands.bench import main as bench

    snap["cli"] = {
        "trtllm-bench": {
            "options": record_click(bench),
            "subcommands": {n: record_click(c) for n, c in bench.commands.items()},
        }
    }
    try:
        from tensorrt_llm.commands.serve import main as serve

        snap["cli"]["trtllm-serve"] = {"options": record_click(serve_command(serve)), "subcommands": {}}
    except ImportError:
        snap["cli"]["trtllm-serve"] = old["cli"]["trtllm-serve"]
    snap["report"] = {
        "blocks": report_keys() or old["report"]["blocks"],
        "percentile_keys": old["report"]["percentile_keys"],
    }
    snap["dataset_jsonl_keys"] = old["dataset_jsonl_keys"]
    return snap


def compare(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    out = []
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if k in ("recorded", "method", "sources"):
                continue
            if k not in new:
                out.append(f"- {path}{k}")
            elif k not in old:
                out.append(f"+ {path}{k}")
            else:
                out += compare(old[k], new[k], f"{path}{k}.")
    elif old != new:
        out.append(f"~ {path.rstrip('.')}: {old!r} -> {new!r}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="where to write the new snapshot")
    ap.add_argument(
        "--backend",
        choices=("tensorrt", "pytorch"),
        default="tensorrt",
        help="which record: tensorrt_llm-1.2.1.json, or the PyTorch backend's tensorrt_llm-1.2.1-pytorch.json",
    )
    ap.add_argument(
        "--compare", action="store_true", help="print the differences from the committed snapshot"
    )
    a = ap.parse_args()
    old = json.loads((TORCH_SNAPSHOT if a.backend == "pytorch" else SNAPSHOT).read_text())
    new = record(old)
    Path(a.out).write_text(json.dumps(new, indent=1))
    print(f"wrote {a.out} (tensorrt_llm {new['tensorrt_llm_version']})")
    if a.compare:
        diff = compare(old, new)
        print("\n".join(diff) if diff else "no differences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
