"""MLflow runs made to agree with the Optuna trials they belong to, after any kill.

Both directions: a trial's own run takes the state its trial ended in (a FINISHED run of a FAIL trial,
killed between MLflow's end and Optuna's COMPLETE, becomes FAILED, so a retry's measurement is the
only one that counts), and a run that no trial points at (the process died between creating the run
and linking it) is failed and moved to MLflow's trash. Trials still RUNNING or WAITING are left to
whoever runs them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from workbench.tracking.base import ROLE, TrialView

#: the MLflow run status of each finished Optuna state
EXPECTED = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}
#: our `status` tag for each finished Optuna state (the worker's words)
STATUS_TAG = {"COMPLETE": "COMPLETE", "FAIL": "FAILED", "PRUNED": "INFEASIBLE"}
#: how far (seconds) a lost run's start may lie outside its trial's lifetime (clock steps, slow stores)
SLACK_S = 120.0


def trial_runs(client: Any, experiment_id: str) -> list[Any]:
    """Every active trial run of the experiment, page by page."""
    out: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{ROLE}` = 'trial'", max_results=1000, page_token=token
        )
        out += list(page)
        token = page.token
        if not token:
            return out


def reconcile_runs(client: Any, experiment_id: str, trials: Iterable[TrialView]) -> dict[str, int]:
    """Fix every run that disagrees with its trial; the counts of what was fixed."""
    by_number = {t.number: t for t in trials}
    counts = {"state_fixed": 0, "orphans": 0}
    for run in trial_runs(client, experiment_id):
        tag = run.data.tags.get("optuna_trial", "")
        t = by_number.get(int(tag)) if tag.isdigit() else None
        if t is None or t.state not in EXPECTED:
            continue  # not this study's, or still being run by someone
        if run.info.run_id == t.run_id:
            counts["state_fixed"] += _match_state(client, run, t)
        elif _lost_run_of(run, t):
            _fail(client, run.info.run_id, t, "lost: the process stopped before Optuna recorded this run")
            client.delete_run(run.info.run_id)
            counts["orphans"] += 1
    return counts


def _match_state(client: Any, run: Any, t: TrialView) -> int:
    want = EXPECTED[t.state]
    if run.info.status == want:
        return 0
    if t.state == "FAIL":
        _fail(client, run.info.run_id, t, t.failure or "the trial failed after this run ended")
    else:
        stopped = t.state == "PRUNED" and t.failure_kind == "pruned"  # by the pruner, not infeasible
        client.set_tag(run.info.run_id, "status", "PRUNED" if stopped else STATUS_TAG[t.state])
        client.set_terminated(run.info.run_id, status=want)
    return 1


def _fail(client: Any, run_id: str, t: TrialView, why: str) -> None:
    client.set_tag(run_id, "status", "FAILED")
    client.set_tag(run_id, "failure_kind", t.failure_kind or "crash")
    client.set_tag(run_id, "failure", why[:4000])
    client.set_tag(run_id, "workbench.reconciled", f"matched to Optuna trial {t.number} ({t.state})")
    client.set_terminated(run_id, status="FAILED")


def _lost_run_of(run: Any, t: TrialView) -> bool:
    """A run made for trial `t` (started within its lifetime) that the trial never linked."""
    if t.start is None:
        return False
    started = run.info.start_time / 1000
    return t.start - SLACK_S <= started <= (t.end or time.time()) + SLACK_S
