"""The command line's grammar. Options that several commands share (`--storage`, `--tracking-uri`, `--json`,
`--set`, the study argument, host and port) are declared once, as parent parsers, so they read the same
everywhere. Standard library only (with `workbench.settings`, itself standard library): `--help` is instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench import settings as S

#: command -> "module:function" under workbench.cli, imported only when the command runs
HANDLERS = {
    "trial": "trial:trial",
    "grid": "trial:grid",
    "validate": "trial:validate",
    "engines": "trial:engines",
    "tune": "tune:tune",
    "worker": "tune:worker",
    "status": "inspect:status",
    "best": "inspect:best",
    "report": "inspect:report",
    "export": "inspect:export",
    "crosscheck": "inspect:crosscheck",
    "dashboard": "ui:dashboard",
    "ui": "ui:ui",
    "lab": "ui:lab",
    "make-tiny-model": "tools:tiny",
    "make-shape-tokenizer": "tools:shape_tokenizer",
    "import": "tools:import_",
    "doctor": "tools:doctor",
}

_STORE_RULE = "; the environment variable {env} overrides the default"


def _parent(*adders: tuple[str, dict]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    for flag, kw in adders:
        p.add_argument(flag, **kw)
    return p


def _parents() -> dict[str, argparse.ArgumentParser]:
    storage_help = (
        f"Optuna storage URL (default {S.DEFAULT_STORAGE} under the project root"
        + _STORE_RULE.format(env=S.ENV_STORAGE)
        + ")"
    )
    tracking_help = (
        f"MLflow tracking URI (default {S.DEFAULT_TRACKING_URI} under the project root"
        + _STORE_RULE.format(env=S.ENV_TRACKING_URI)
        + "); none: no MLflow, `import` the study later"
    )
    return {
        "storage": _parent(("--storage", {"default": None, "help": storage_help})),
        "tracking": _parent(("--tracking-uri", {"default": None, "help": tracking_help})),
        "json": _parent(("--json", {"action": "store_true", "help": "print JSON"})),
        "study": _parent(("study", {"help": "study name or study definition (YAML)"})),
        "set": _parent(
            (
                "--set",
                {
                    "dest": "assign",
                    "action": "append",
                    "default": [],
                    "metavar": "KEY=VALUE",
                    "help": "a study setting, e.g. workload.num_requests=16 (trial: also a knob value, max_batch_size=8); "
                    "repeatable",
                },
            )
        ),
        "budget": _parent(
            (
                "--n-trials",
                {
                    "type": int,
                    "default": None,
                    "help": "finished trials the study should hold (default: budget.n_trials of the study)",
                },
            ),
            (
                "--timeout",
                {"type": float, "default": None, "help": "seconds after which no new trial starts"},
            ),
        ),
    }


def _server(sub: Any, name: str, text: str, port: int, parents: list) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text, parents=parents)
    p.add_argument("--host", default=S.DEFAULT_HOST)
    p.add_argument("--port", type=int, default=port)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Tune LLM inference engines (TensorRT-LLM, transformers) with real builds and benchmarks.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    par = _parents()
    _trial_commands(sub, par)
    _study_commands(sub, par)
    _inspect_commands(sub, par)
    _tool_commands(sub, par)
    return p


def _trial_commands(sub: Any, par: dict) -> None:
    t = sub.add_parser("trial", help="run one trial of a study and print its metrics", parents=[par["set"]])
    t.add_argument("study", help="study definition (YAML), e.g. studies/quickstart.yaml")
    t.add_argument("--out", help="folder for plan.json, result.json and worker.log")
    t.add_argument("--json", action="store_true", help="print the result JSON instead of the table")

    v = sub.add_parser("validate", help="check a study definition and show its resolved search space")
    v.add_argument("study")
    sub.add_parser("engines", help="list the engines and their knobs")

    g = sub.add_parser(
        "grid",
        parents=[par["set"]],
        help="measure every combination of the study's knob choices into a grid file (for replay)",
    )
    g.add_argument(
        "study", help="study definition (YAML); its search space must be choices or stepped ranges"
    )
    g.add_argument("--out", required=True, help="grid file (JSON Lines); an existing one is resumed")
    g.add_argument(
        "--reuse-model",
        action="store_true",
        help="measure in this process, loading each model once (fast on GPUs; a crash ends the recording)",
    )
    g.add_argument("--time-budget", type=float, default=None, help="seconds after which no new point starts")


def _study_commands(sub: Any, par: dict) -> None:
    tu = sub.add_parser(
        "tune",
        help="create or resume a study and run trials until its budget is reached",
        parents=[par["storage"], par["tracking"], par["budget"], par["set"]],
    )
    tu.add_argument("study", help="study definition (YAML)")
    tu.add_argument(
        "--rerun-duplicates",
        action="store_true",
        help="measure knob values again even when a finished trial already measured them",
    )
    tu.add_argument(
        "--gpus",
        default=None,
        metavar="0,1,...",
        help="one worker process per GPU (CUDA_VISIBLE_DEVICES), all on this study (docs/scale-out.md)",
    )

    wk = sub.add_parser(
        "worker",
        help="join a study (from any machine) and run its trials until the budget is reached",
        parents=[par["storage"], par["tracking"], par["budget"]],
    )
    wk.add_argument("study", help="study name (its stored definition is used) or study definition (YAML)")


def _inspect_commands(sub: Any, par: dict) -> None:
    common = [par["study"], par["storage"]]
    sub.add_parser("status", help="a table of the study's trials", parents=[*common, par["json"]])
    sub.add_parser("best", help="the best trial, or the Pareto set", parents=[*common, par["json"]])
    e = sub.add_parser(
        "export",
        parents=common,
        help="write a trial's deployable configuration (options YAML, build command, README)",
    )
    e.add_argument("--trial", type=int, default=None, help="trial number (default: the best trial)")
    e.add_argument(
        "--out",
        default=None,
        help="output folder (default exports/STUDY-trialN under the project root; WORKBENCH_EXPORTS overrides)",
    )

    x = sub.add_parser(
        "crosscheck",
        parents=[*common, par["tracking"]],
        help="run the engine's own benchmark on a trial's configuration and log its report beside ours",
    )
    x.add_argument("--trial", type=int, required=True, help="trial number")
    x.add_argument(
        "--engine",
        choices=("bench", "workbench"),
        default="bench",
        help="bench: trtllm-bench builds the engine (when its flags can express it); workbench: the trial's own",
    )
    x.add_argument(
        "--out", default=None, help="work folder (default $WORKBENCH_HOME/crosscheck/STUDY-trialN)"
    )

    r = sub.add_parser(
        "report",
        parents=[*common, par["tracking"]],
        help="write the study's self-contained HTML report and attach it to MLflow",
    )
    r.add_argument("--out", default=None, help="HTML file (default reports/STUDY.html)")

    _server(sub, "dashboard", "optuna-dashboard on the study (bound to 127.0.0.1)", S.DASHBOARD_PORT, common)
    u = _server(
        sub, "ui", "the MLflow UI on a study's runs (bound to 127.0.0.1)", S.MLFLOW_UI_PORT, [par["tracking"]]
    )
    u.add_argument("study", nargs="?", help="study name or definition; opens its runs page")
    _server(sub, "lab", "JupyterLab on the notebooks (127.0.0.1), this environment as kernel", S.LAB_PORT, [])


def _tool_commands(sub: Any, par: dict) -> None:
    m = sub.add_parser("make-tiny-model", help="write a tiny random-weight Llama model and tokenizer")
    m.add_argument("dir")
    m.add_argument("--seed", type=int, default=0)
    st = sub.add_parser(
        "make-shape-tokenizer",
        help="write a tokenizer covering every token id of a model shape (random-weight serving runs)",
    )
    st.add_argument("shape", help="a folder with the shape's config.json (e.g. studies/shapes/llama-3.1-8b)")
    st.add_argument("dir", help="where to write the tokenizer")

    im = sub.add_parser(
        "import",
        parents=[par["storage"], par["tracking"]],
        help="copy a study run elsewhere (e.g. with --tracking-uri none) into this storage and MLflow",
    )
    im.add_argument("study", help="study name")
    im.add_argument("--from", dest="source", required=True, help="the Optuna storage URL it ran with")
    im.add_argument(
        "--results", required=True, help="the WORKBENCH_HOME folder it ran with (its trial folders)"
    )

    d = sub.add_parser(
        "doctor",
        parents=[par["json"]],
        help="which engines can run here, in which environment, and why not; GPU and stores",
    )
    d.add_argument("study", nargs="?", help="also check this study's runtime (its interpreter or container)")
