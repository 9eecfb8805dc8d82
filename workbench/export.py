"""What a user deploys from a trial: the engine's options files, the build and serve commands, a README.

For `trtllm`: `extra_llm_api_options.yaml` (runtime sections plus the build sections, for serving
straight from the Hugging Face checkpoint with the TensorRT backend), `runtime_options.yaml` (for
a prebuilt engine: trtllm-serve and trtllm-bench `--extra_llm_api_options`), `build_args.json` with
`build_engine.py` (builds and saves exactly the trial's engine through the LLM API), `commands.sh`
and `README.md`. For `hf`: the continuous-batching settings and a loading snippet. Every file is
derived from the same pure translation the trial ran with (engines/trtllm_args.py).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from workbench.spec import StudySpec

_BUILD_SCRIPT = '''"""Build the TensorRT-LLM engine of workbench study {study}, trial {trial} (TensorRT-LLM {version}).

usage: python build_engine.py MODEL_DIR_OR_HUB_ID ENGINE_DIR
"""
import json
import sys
from pathlib import Path

from tensorrt_llm._tensorrt_engine import LLM
from tensorrt_llm.llmapi import BuildConfig, CalibConfig, QuantAlgo, QuantConfig


def main(model: str, engine_dir: str) -> None:
    args = json.loads((Path(__file__).parent / "build_args.json").read_text())
    bc = args.pop("build_config")
    plugin = bc.pop("plugin_config")
    build_config = BuildConfig(**bc)
    for key, value in plugin.items():
        setattr(build_config.plugin_config, key, value)
    q = args.pop("quant_config")
    quant_config = QuantConfig(
        quant_algo=QuantAlgo[q["quant_algo"]] if q["quant_algo"] else None,
        kv_cache_quant_algo=QuantAlgo[q["kv_cache_quant_algo"]] if q["kv_cache_quant_algo"] else None,
    )
    calib = args.pop("calib_config", None)
    extra = {{"calib_config": CalibConfig(**calib)}} if calib else {{}}
    with LLM(model=model, build_config=build_config, quant_config=quant_config, **extra, **args) as llm:
        llm.save(engine_dir)
        for step, seconds in llm.llm_build_stats.build_steps_info:
            print(f"{{step}}: {{seconds:.1f}} s")
    print(f"engine saved to {{engine_dir}}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def export(
    spec: StudySpec,
    trial_number: int,
    knobs: dict[str, Any],
    metrics: dict[str, Any],
    out_dir: Path,
    baseline_metrics: dict[str, Any] | None = None,
    run_id: str | None = None,
    environment: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the deployable configuration of one trial into `out_dir`; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.engine == "trtllm":
        files = _trtllm(spec, trial_number, knobs, out_dir)
    else:
        files = _hf(spec, knobs, out_dir)
    summary = {
        "study": spec.name,
        "trial": trial_number,
        "engine": spec.engine,
        "model": spec.model_source,
        "knobs": knobs,
        "metrics": metrics,
        "baseline_metrics": baseline_metrics or {},
        "mlflow_run_id": run_id,
        "environment": environment or {},
    }
    p = out_dir / "trial.json"
    p.write_text(json.dumps(summary, indent=2, default=str))
    files.append(p)
    readme = out_dir / "README.md"
    readme.write_text(
        _readme(spec, trial_number, knobs, metrics, baseline_metrics, run_id, environment, files)
    )
    return [*files, readme]


def export_trial(
    study: Any, number: int | None = None, out: Path | None = None, spec: StudySpec | None = None
) -> list[Path]:
    """Export trial `number` (default: the best) of an Optuna study; the definition is the one stored in it."""
    from workbench.study import baseline_trial, pick_trial, stored_spec

    spec = spec or stored_spec(study)
    t = pick_trial(study, number)
    base = baseline_trial(study)
    env: dict[str, Any] = {}
    rp = t.user_attrs.get("result_path")
    if rp and Path(rp).exists():
        env = json.loads(Path(rp).read_text()).get("environment", {})
    return export(
        spec,
        t.number,
        t.user_attrs.get("knobs", t.params),
        t.user_attrs.get("metrics", {}),
        out or Path(f"exports/{spec.name}-trial{t.number}"),
        baseline_metrics=base.user_attrs.get("metrics") if base else None,
        run_id=t.user_attrs.get("mlflow_run_id"),
        environment=env,
    )


def _yaml(path: Path, data: dict[str, Any], head: str) -> Path:
    path.write_text(head + yaml.safe_dump(data, sort_keys=False))
    return path


def _trtllm(spec: StudySpec, number: int, knobs: dict[str, Any], out: Path) -> list[Path]:
    from workbench.engines.trtllm import args as T
    from workbench.engines.trtllm.api import snapshot

    opts = spec.engine_options
    dtype, fmt = spec.model.dtype, spec.model.load_format
    version = snapshot()["tensorrt_llm_version"]
    head = f"# workbench study {spec.name}, trial {number}: TensorRT-LLM {version} LLM-API options\n"
    full = _yaml(
        out / "extra_llm_api_options.yaml",
        T.extra_llm_api_options(knobs, opts, dtype, fmt),
        head
        + "# for serving from the Hugging Face checkpoint with --backend tensorrt (builds this engine)\n",
    )
    rt = _yaml(
        out / "runtime_options.yaml",
        T.runtime_args(knobs),
        head + "# runtime settings for the prebuilt engine (trtllm-serve / trtllm-bench --engine_dir)\n",
    )
    build = T.build_args(knobs, opts, dtype, fmt)
    ba = out / "build_args.json"
    ba.write_text(json.dumps(build, indent=2))
    script = out / "build_engine.py"
    script.write_text(_BUILD_SCRIPT.format(study=spec.name, trial=number, version=version))
    cmds = out / "commands.sh"
    cmds.write_text(_commands(spec, knobs))
    cmds.chmod(0o755)
    return [full, rt, ba, script, cmds]


def bench_model_args(spec: StudySpec) -> list[str]:
    """trtllm-bench's --model is a hub name (it rejects paths); a local checkpoint goes to --model_path."""
    if spec.model.id is not None:
        return ["--model", spec.model.id]
    return ["--model", Path(spec.model_source).name, "--model_path", spec.model_source]


def _commands(spec: StudySpec, knobs: dict[str, Any]) -> str:
    from workbench.engines.trtllm import args as T

    src = spec.model_source
    q = shlex.quote
    tok = spec.model.tokenizer or src
    lines = [
        "#!/usr/bin/env bash",
        f"# Deploy trial configuration of workbench study {spec.name}. Run from this folder on the GPU machine",
        "# (TensorRT-LLM 1.2.x installed, or inside NVIDIA's TensorRT-LLM release container).",
        "set -euo pipefail",
        f"MODEL=${{MODEL:-{q(src)}}}",
        "ENGINE_DIR=${ENGINE_DIR:-./engine}",
        "",
        "# 1. build the engine exactly as the trial did (LLM API; BuildConfig, QuantConfig, CalibConfig in build_args.json)",
        'python build_engine.py "$MODEL" "$ENGINE_DIR"',
        "",
        "# 2. serve it (OpenAI-compatible server) with the trial's runtime settings",
        f'trtllm-serve "$ENGINE_DIR" --tokenizer {q(tok)} --backend tensorrt --host 127.0.0.1 --port 8000 \\',
        "  --extra_llm_api_options runtime_options.yaml",
        "",
        "# or serve straight from the checkpoint; TensorRT-LLM builds the same engine at start-up:",
        '# trtllm-serve "$MODEL" --backend tensorrt --host 127.0.0.1 --port 8000 --extra_llm_api_options extra_llm_api_options.yaml',
        "",
        "# 3. measure it with trtllm-bench (a dataset in trtllm-bench's JSON Lines format: `workbench crosscheck` writes one)",
        "trtllm-bench "
        + " ".join(map(q, bench_model_args(spec)))
        + ' throughput --engine_dir "$ENGINE_DIR" \\',
        "  --dataset dataset.jsonl --extra_llm_api_options runtime_options.yaml --streaming --report_json report.json \\",
        "  " + " ".join(map(q, T.bench_throughput_flags(knobs, spec.engine_options))),
    ]
    why_not = T.bench_build_unsupported(knobs)
    lines.append("")
    if why_not is None:
        flags = " ".join(map(q, T.bench_build_flags(knobs, spec.engine_options, spec.model.load_format)))
        lines += [
            "# alternatively, a comparable engine from trtllm-bench itself (its own plugin choices; max_input_len stays 1024):",
            "# trtllm-bench " + " ".join(map(q, bench_model_args(spec))) + f" build {flags}",
        ]
    else:
        lines.append(f"# (no trtllm-bench build equivalent: {why_not})")
    return "\n".join(lines) + "\n"


def _hf(spec: StudySpec, knobs: dict[str, Any], out: Path) -> list[Path]:
    cb = {
        "max_requests_per_batch": knobs.get("max_batch_size"),
        "max_batch_tokens": knobs.get("max_num_tokens"),
        "page_size": knobs.get("page_size"),
        "scheduler_type": knobs.get("scheduler"),
        "allow_block_sharing": knobs.get("block_reuse"),
        "use_cuda_graph": knobs.get("cuda_graphs"),
        "max_memory_percent": knobs.get("kv_cache_fraction"),
    }
    p = _yaml(
        out / "continuous_batching.yaml",
        {
            "model": spec.model_source,
            "dtype": spec.model.dtype,
            "attn_implementation": knobs.get("attn_implementation"),
            "quantization": knobs.get("quantization"),
            "continuous_batching_config": cb,
        },
        f"# workbench study {spec.name}: transformers continuous-batching settings (ContinuousBatchingConfig)\n",
    )
    return [p]


def _readme(
    spec: StudySpec,
    number: int,
    knobs: dict[str, Any],
    metrics: dict[str, Any],
    base: dict[str, Any] | None,
    run_id: str | None,
    env: dict[str, Any] | None,
    files: list[Path],
) -> str:
    def ratio(k: str) -> str:
        if base and base.get(k) and metrics.get(k) is not None:
            return f" ({metrics[k] / base[k]:.2f}x the baseline's {base[k]:.4g})"
        return ""

    shown = [
        k
        for k in (
            "output_tok_s",
            "request_per_s",
            "ttft_ms_p50",
            "ttft_ms_p95",
            "tpot_ms_p50",
            "peak_memory_gb",
            "gsm8k_score",
        )
        if k in metrics
    ]
    gpu = (env or {}).get("gpu") or (env or {}).get("device") or {}
    lines = [
        f"# {spec.name}, trial {number}: deployable configuration",
        "",
        f"Engine `{spec.engine}`, model `{spec.model_source}`"
        + (" (random weights: load_format dummy)" if spec.model.load_format == "dummy" else "")
        + ".",
        f"Measured on: {gpu.get('name', 'see trial.json') if isinstance(gpu, dict) else gpu}.",
        f"MLflow run: `{run_id}`." if run_id else "",
        "",
        "## Measured",
        "",
        *[f"- {k}: {metrics[k]:.4g}{ratio(k)}" for k in shown],
        "",
        "## Knobs",
        "",
        *[f"- {k}: `{v}`" for k, v in knobs.items()],
        "",
        "## Files",
        "",
        *[f"- `{f.name}`" for f in files],
        "",
    ]
    if spec.engine == "trtllm":
        lines += [
            "Run `bash commands.sh` on the GPU machine: it builds the engine with `build_engine.py`, serves it",
            "with `trtllm-serve` and shows the `trtllm-bench` command that measures it. Numbers measured on one",
            "GPU type hold for that GPU type; rebuild and re-measure on another.",
            "",
        ]
    return "\n".join(lines)
