"""vLLM 0.26.0's recorded API: every engine argument, `vllm serve` option, SamplingParams field, class
signature, quantization method and metric the `vllm` engines use, read from vLLM 0.26.0 itself.

vLLM does not run where the workbench is tested (its wheel is built for CUDA 13.0), so conformance is
checked against this snapshot (`vllm-0.26.0.json`, made by `scripts/record_vllm_api.py` from an
installed vLLM; its `method` and `facts` say how). `check_engine_args` and `check_serve_command` say
whether arguments and a command line fit it; `standin.py` builds strict stand-ins from it for tests.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("vllm-0.26.0.json")


@functools.cache
def snapshot(path: str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or SNAPSHOT).read_text())


def _split(text: str, sep: str) -> list[str]:
    """Split a type annotation at top-level `sep` (not inside brackets)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == sep and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch in "[("
        depth -= ch in "])"
        cur += ch
    return [*parts, cur.strip()] if cur.strip() else parts


def conforms(t: str, value: Any) -> bool:
    """Whether `value` fits a field annotated `t` (the annotation as vLLM 0.26.0 writes it).

    Config dataclasses (`CompilationConfig`, ...) take a dict, as vLLM's own parser gives them; a type
    not modelled here accepts nothing, so a new kind of argument shows up as a failing check."""
    t = t.strip()
    alts = _split(t, "|")
    if len(alts) > 1:
        return any(conforms(a, value) for a in alts)
    head, _, inner = t.partition("[")
    inner = inner[:-1] if inner.endswith("]") else inner
    if head in ("Optional",):
        return value is None or conforms(inner, value)
    if head == "Union":
        return any(conforms(a, value) for a in _split(inner, ","))
    if head == "Literal":
        return any(value == json.loads(a.replace("'", '"')) for a in _split(inner, ","))
    if t in ("None", "NoneType"):
        return value is None
    if head in ("list", "set"):
        items = _split(inner, ",")[0] if inner else "Any"
        return isinstance(value, (list, tuple)) and all(conforms(items, v) for v in value)
    if head in ("dict", "Dict") or t.endswith("Config") or t.endswith("ConfigArgs"):
        return isinstance(value, dict)
    return _scalar(t, value)


def _scalar(t: str, value: Any) -> bool:
    if t == "Any":
        return True
    if t == "bool":
        return isinstance(value, bool)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    return False


def check_engine_args(args: dict[str, Any], snap: dict[str, Any] | None = None) -> list[str]:
    """Problems with `AsyncEngineArgs(**args)` in the recorded vLLM: unknown names, values of a wrong type
    or outside a field's recorded choices; [] when none."""
    snap = snap or snapshot()
    fields, out = snap["engine_args"], []
    for k, v in args.items():
        f = fields.get(k)
        if f is None:
            out.append(f"EngineArgs has no field {k!r} in vLLM {snap['vllm_version']}")
        elif not conforms(f["type"], v):
            out.append(f"EngineArgs.{k}={v!r} does not fit the recorded type {f['type']}")
        elif f.get("choices") and v is not None and v not in f["choices"] and str(v) not in f["choices"]:
            out.append(f"EngineArgs.{k}={v!r} is not one of {f['choices']}")
    return out


_INT = re.compile(r"-?\d+")


def check_serve_command(cmd: list[str], snap: dict[str, Any] | None = None) -> list[str]:
    """Problems with a `vllm serve MODEL ...` command line: options the recorded parser lacks, values
    that do not parse as its type or are not among its choices, a flag given a value, a missing value."""
    snap = snap or snapshot()
    opts = snap["serve_options"]
    alias = {a: name for name, o in opts.items() for a in o.get("aliases") or []}
    if cmd[1:2] != ["serve"] or len(cmd) < 3 or cmd[2].startswith("-"):
        return ["the command is not `vllm serve MODEL ...`"]
    out, i, rest = [], 0, cmd[3:]
    while i < len(rest):
        flag, _, inline = rest[i].partition("=")
        name = alias.get(flag, flag)
        o = opts.get(name)
        if o is None:
            out.append(f"vllm serve {snap['vllm_version']} has no option {flag}")
            i += 2 if not inline and i + 1 < len(rest) and not rest[i + 1].startswith("-") else 1
            continue
        if o["nargs"] == 0:  # store_true or BooleanOptionalAction: never a value
            out += [f"{flag} takes no value"] if inline else []
            i += 1
            continue
        values = [inline] if inline else []
        j = i + 1
        while not values or (o["nargs"] == "+" and j < len(rest) and not rest[j].startswith("--")):
            if j >= len(rest) or rest[j].startswith("--"):
                break
            values.append(rest[j])
            j += 1
        out += (
            [f"{flag} needs a value"]
            if not values
            else [p for v in values for p in _value_problems(flag, o, v)]
        )
        i = j
    return out


def _value_problems(flag: str, o: dict[str, Any], raw: str) -> list[str]:
    if o.get("choices") and raw not in [str(c) for c in o["choices"]]:
        return [f"{flag} {raw!r} is not one of {o['choices']}"]
    t = o["type"]
    ok = (t == "int" and bool(_INT.fullmatch(raw))) or t == "str" or (t == "float" and _is_float(raw))
    if t == "json":
        ok = _is_json_object(raw)
    return [] if ok else [f"{flag} {raw!r} does not parse as {t}"]


def _is_float(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def check_sampling_params(kwargs: dict[str, Any], snap: dict[str, Any] | None = None) -> list[str]:
    """Problems with `SamplingParams(**kwargs)`: unknown fields or values of a wrong type."""
    snap = snap or snapshot()
    fields, out = snap["sampling_params"], []
    for k, v in kwargs.items():
        f = fields.get(k)
        if f is None:
            out.append(f"SamplingParams has no field {k!r} in vLLM {snap['vllm_version']}")
        elif k != "output_kind" and not conforms(f["type"], v):
            out.append(f"SamplingParams.{k}={v!r} does not fit the recorded type {f['type']}")
    return out


def modelopt_algos(method: str, snap: dict[str, Any] | None = None) -> list[str]:
    """The ModelOpt `quant_algo` values vLLM's loader for `method` accepted when it was recorded."""
    snap = snap or snapshot()
    entry = snap["modelopt_quant_algos"].get(method) or {}
    return [a for a, verdict in (entry.get("from_config") or {}).items() if verdict == "ok"]


def metric_names(snap: dict[str, Any] | None = None) -> set[str]:
    """Every series name vLLM's Prometheus logger exposes (counters with their `_total`)."""
    snap = snap or snapshot()
    out = set()
    for name, m in snap["metrics"].items():
        out.update(m.get("exposed_as") or [name])
    return out
