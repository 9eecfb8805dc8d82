"""The MLflow UI set up for comparing trials when it opens: model-training view, named runs, columns.

MLflow 3 decides an experiment's view from the tag `mlflow.experimentKind`; `custom_model_development`
is its model-training view (runs table, charts), where an untagged experiment may open in the GenAI
view. The values are the UI's own enum, found in MLflow 3.17's bundled UI
(`mlflow/server/js/build/static/js/main.*.js`: `CUSTOM_MODEL_DEVELOPMENT="custom_model_development"`
beside the lookup of `"mlflow.experimentKind"`; `mlflow/demo/generators/traces.py` sets the GenAI one).

The runs table's columns and expanded rows are UI state. MLflow's "share view" stores that state as
JSON in an experiment tag `mlflow.sharedViewState.<key>` and loads it from `?viewStateShareKey=<key>`
(same bundle: `viewStateShareKey`, `selectedColumns`, `runsExpanded`, column keys written
``metrics.`name` ``). The workbench writes one such view per study, `VIEW_KEY`, and `workbench ui`
opens it: the study run expanded, the trial runs listed with the objectives, constraints and
searched knobs as columns, the best first.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.metric_registry import shown_in
from workbench.spec import StudySpec

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
SHARED_VIEW_TAG = "mlflow.sharedViewState."
VIEW_KEY = "workbench-trials"
#: metrics worth a column in every study (after its objectives and constraints)
KEY_METRICS = (*shown_in("mlflow_columns"), "output_tok_s_vs_baseline")
#: short names of knobs in run names
SHORT = {"max_batch_size": "bs", "max_num_tokens": "tok", "kv_cache_fraction": "kv"}


def run_name(number: int, knobs: dict[str, Any], searched: list[str], is_baseline: bool) -> str:
    """What a trial is, readable in the runs table: `#0013 int8 bs=16 tok=512 kv=0.9`."""
    parts = [f"#{number:04d}"]
    if "quantization" in knobs:
        parts.append(str(knobs["quantization"]))
    for name in searched:
        if name != "quantization" and name in knobs:
            parts.append(f"{SHORT.get(name, name)}={_short(knobs[name])}")
    if is_baseline:
        parts.append("(baseline)")
    return " ".join(parts)


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def view_state(spec: StudySpec, parent_run_id: str, constraint_metrics: list[str]) -> dict[str, Any]:
    """The runs table's state: the study run expanded, key metrics and searched knobs as columns."""
    metrics = [o.metric for o in spec.objectives] + constraint_metrics + list(KEY_METRICS)
    if spec.accuracy is not None:
        metrics.append("gsm8k_score")
    metrics = list(dict.fromkeys(metrics)) + ["feasible"]
    columns = [f"metrics.`{m}`" for m in metrics] + [f"params.`{k}`" for k in spec.search_space]
    first = spec.objectives[0]
    return {
        "searchFilter": "",
        "orderByKey": f"metrics.`{first.metric}`",
        "orderByAsc": first.direction == "minimize",
        "selectedColumns": ["attributes.`Source`", *columns],
        "runsExpanded": {parent_run_id: True},
        "runsHiddenMode": "SHOW_ALL",
        "hideEmptyCharts": True,
    }


def set_up_experiment(
    client: Any, experiment_id: str, spec: StudySpec, parent_run_id: str, constraint_metrics: list[str]
) -> None:
    """The experiment's kind and its shared view (rewritten each time a study starts: new knobs, new run)."""
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    state = view_state(spec, parent_run_id, constraint_metrics)
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + VIEW_KEY, json.dumps(state))


def runs_page(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table, opened in the workbench's view."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}"
