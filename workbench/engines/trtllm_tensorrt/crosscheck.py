"""Cross-check a trtllm-tensorrt trial with trtllm-bench (the execution and comparison are trtllm's).

`trtllm-bench build` builds the engine, or, where its build flags cannot express the configuration
(or `--engine workbench` asks), the trial's own cached engine is used; then `trtllm-bench throughput
--engine_dir` runs with the trial's runtime settings (`runtime_options.yaml`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import workbench.engines.trtllm_tensorrt.args as T
from workbench.engines.base import CrosscheckError, CrosscheckInput
from workbench.engines.comparison import Crosscheck
from workbench.engines.trtllm.crosscheck import Commands, run_commands, throughput_command, write_dataset
from workbench.engines.trtllm_tensorrt.export import bench_model_args
from workbench.spec import StudySpec


def commands(
    spec: StudySpec,
    opts: T.TensorrtOptions,
    knobs: dict[str, Any],
    work: Path,
    *,
    own_engine: Path | None = None,
    eos_id: int | None = None,
    exe: str | None = None,
) -> Commands:
    """The trtllm-bench command lines for one trial (pure: nothing runs)."""
    exe = exe or opts.trtllm_bench
    top = [
        exe,
        *bench_model_args(spec.model.id, spec.model_source),
        "--workspace",
        str(work / "bench-workspace"),
    ]
    why_not = T.bench_build_unsupported(knobs)
    if own_engine is None and why_not is not None:
        raise CrosscheckError(
            f"{why_not}; and the trial's own engine is not in the cache: run the trial again, then crosscheck"
        )
    if own_engine is not None:
        build = None
        engine_dir = own_engine
        source = "workbench engine cache"
        note = why_not or "using the trial's own engine (--engine workbench)"
    else:
        build = [*top, "build", *T.bench_build_flags(knobs, opts, spec.model.load_format)]
        name = spec.model.id or Path(spec.model_source).name
        engine_dir = work / "bench-workspace" / name / f"tp_{opts.tensor_parallel_size}_pp_1"
        source = "trtllm-bench build"
        note = "trtllm-bench builds with its own plugin choices and max_input_len 1024; the runtime settings are the trial's"
    tp = throughput_command(
        [*top, "throughput", "--engine_dir", str(engine_dir)],
        spec,
        work,
        "runtime_options.yaml",
        T.bench_throughput_flags(knobs, opts),
        eos_id,
    )
    return Commands(build, tp, engine_dir, source, note)


def _own_engine(inp: CrosscheckInput) -> Path | None:
    """The trial's cached engine, where asked for or where trtllm-bench cannot build the configuration."""
    if inp.artifact_path is None:
        return None
    if inp.use_own_artifact or T.bench_build_unsupported(inp.knobs):
        return inp.artifact_path / "engine"
    return None


def run(inp: CrosscheckInput) -> Crosscheck:
    """trtllm-bench on the trial's engine configuration; the comparison."""
    import yaml

    write_dataset(inp)
    rt = T.runtime_args(inp.knobs, inp.options.cuda_graph_cache_size)
    (inp.work / "runtime_options.yaml").write_text(yaml.safe_dump(rt, sort_keys=False))
    cmds = commands(
        inp.spec, inp.options, inp.knobs, inp.work, own_engine=_own_engine(inp), eos_id=inp.eos_id
    )
    return run_commands(inp, cmds)
