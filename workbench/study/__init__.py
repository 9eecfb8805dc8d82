"""Optuna studies over real trials: storage, sampler, search space, objectives, constraints, resume.

`tune(spec)` creates or resumes the study named in the spec. The first trial is the engine's
default configuration (the baseline). Every trial runs through `workbench.trials.run.run_trial` (a worker
subprocess) and is logged to MLflow by `workbench.tracking`. Infeasible combinations are pruned
before any work; failures become FAIL trials with their cause; the study always goes on.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from workbench.spec import Choices, Range, StudySpec

if TYPE_CHECKING:
    from workbench.trials.result import TrialResult

DEFAULT_STORAGE = "sqlite:///studies/optuna.db"
HEARTBEAT_S = 2
GRACE_S = 10
ATTR_KNOBS, ATTR_BASELINE, ATTR_CONSTRAINTS = "knobs", "baseline", "constraints"


class TrialFailed(Exception):
    """A trial failed (its cause is in the trial's user attrs); the study goes on."""


class StudyMismatch(ValueError):
    pass


# ------------------------------------------------------------------------------------------ storage
def redact(url: str) -> str:
    """A storage or tracking URL without its password, for logs and tags."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def make_storage(
    url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S
) -> optuna.storages.BaseStorage:
    """Any Optuna storage URL. RDB storages get a heartbeat, so a killed process's trial is failed and retried."""
    if url.startswith("journal:") or url.endswith((".log", ".jsonl")):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # pysqlite opens no transaction for SELECT, so two processes can both pop one WAITING trial
        # (Optuna's FOR UPDATE is a no-op on SQLite); autocommit here + BEGIN IMMEDIATE below serialises them
        engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    import sqlalchemy
    import sqlalchemy.exc

    for attempt in range(6):  # several workers starting on an empty database race to create its tables
        try:
            with _quiet_experimental():
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=grace_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=2
                    ),
                )
            if url.startswith("sqlite"):
                sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
            return storage
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
            sqlalchemy.exc.OperationalError,
        ):
            if attempt == 5:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def _quiet_experimental():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# ------------------------------------------------------------------------------------- search space
def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    """Optuna distributions of the searched knobs (fixed knobs are not searched)."""
    defs = spec.engine_knobs()
    out: dict[str, BaseDistribution] = {}
    for name, entry in spec.search_space.items():
        if isinstance(entry, Choices):
            out[name] = CategoricalDistribution(entry.choices)
        elif isinstance(entry, Range):
            if defs[name].type == "int":
                out[name] = IntDistribution(
                    int(entry.low), int(entry.high), log=entry.log, step=int(entry.step or 1)
                )
            else:
                out[name] = FloatDistribution(entry.low, entry.high, log=entry.log, step=entry.step)
    return out


def grid(spec: StudySpec) -> dict[str, list[Any]]:
    """The grid sampler's values: choices as they are, ranges by their step."""
    out = {}
    for name, d in distributions(spec).items():
        if isinstance(d, CategoricalDistribution):
            out[name] = list(d.choices)
        elif d.step is None:
            raise StudyMismatch(
                f"sampler grid needs search_space.{name} to be choices or a range with a step"
            )
        else:
            n = int(round((d.high - d.low) / d.step))
            out[name] = [d.low + i * d.step for i in range(n + 1)]
    return out


def suggest(trial: optuna.Trial, dists: dict[str, BaseDistribution]) -> dict[str, Any]:
    return {name: trial._suggest(name, d) for name, d in dists.items()}


# ---------------------------------------------------------------------------- objectives, constraints
def constraint_values(
    spec: StudySpec, metrics: dict[str, float], baseline: dict[str, float] | None
) -> list[float]:
    """Optuna's convention: <= 0 is feasible. A missing metric counts as violated."""
    out = []
    for c in spec.constraints:
        v = metrics.get(c.metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(1.0)
        elif c.max is not None:
            out.append(v - c.max)
        elif c.min is not None:
            out.append(c.min - v)
        elif "gsm8k_gate_threshold" in metrics and c.metric == "gsm8k_score":
            out.append(metrics["gsm8k_gate_threshold"] - v)  # TensorRT-LLM's test, decided in the worker
        else:
            ref = (baseline or {}).get(c.metric)
            out.append(0.0 if ref is None else (ref - c.max_drop_from_baseline) - v)
    return out


def constraint_names(spec: StudySpec) -> list[str]:
    """Readable names ("ttft_ms_p95<=2000"), used as Optuna constraint keys and in MLflow."""
    out = []
    for c in spec.constraints:
        if c.max is not None:
            out.append(f"{c.metric}<={c.max:g}")
        elif c.min is not None:
            out.append(f"{c.metric}>={c.min:g}")
        else:
            out.append(f"{c.metric}>=baseline-{c.max_drop_from_baseline:g}")
    return out


def make_sampler(spec: StudySpec) -> optuna.samplers.BaseSampler:
    """Constraints reach the samplers that use them (TPE, NSGA-II, GP) through `Trial.set_constraint`."""
    s = spec.sampler
    with _quiet_experimental():
        if s.name == "tpe":
            return optuna.samplers.TPESampler(seed=s.seed, **s.options)
        if s.name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=s.seed, **s.options)
        if s.name == "gp":  # imports torch in this process: the GP model needs it
            return optuna.samplers.GPSampler(seed=s.seed, **s.options)
        if s.name == "random":
            return optuna.samplers.RandomSampler(seed=s.seed)
        return optuna.samplers.GridSampler(grid(spec), seed=s.seed)


def is_feasible(trial: FrozenTrial) -> bool:
    return all(c <= 0 for c in trial.constraints.values())


# ------------------------------------------------------------------------------------------- study
def open_study(spec: StudySpec, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it by name; a changed objective is an error, not a silent mix."""
    store = make_storage(storage) if isinstance(storage, str) else storage
    directions = [o.direction for o in spec.objectives]
    names = [o.metric for o in spec.objectives]
    study = optuna.create_study(
        study_name=spec.name,
        storage=store,
        directions=directions,
        sampler=make_sampler(spec),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("objectives")
    if stored is not None and stored != names or [d.name.lower() for d in study.directions] != directions:
        raise StudyMismatch(
            f"study {spec.name!r} already exists in this storage with objectives {stored} "
            f"({[d.name.lower() for d in study.directions]}); the study file asks for {names} ({directions}). "
            "Give the study a new name, or use another --storage."
        )
    # the definition itself, so export and crosscheck can work from the study name alone
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    study.set_user_attr("spec_path", str(spec.source_path) if spec.source_path else None)
    if stored is None:
        study.set_user_attr("objectives", names)
        study.set_user_attr("engine", spec.engine)
        study.set_user_attr("model", spec.model_source)
        with _quiet_experimental():
            study.set_metric_names(names)
    return study


def enqueue_baseline(study: optuna.Study, spec: StudySpec, dists: dict[str, BaseDistribution]) -> None:
    """The engine's default configuration is the first trial, so every result reads as a ratio to it."""
    if any(t.user_attrs.get(ATTR_BASELINE) for t in study.get_trials(deepcopy=False)):
        return
    from workbench.trials.run import resolve_knobs

    knobs = resolve_knobs(spec, {})
    params = {k: v for k, v in knobs.items() if k in dists and _contains(dists[k], v)}
    study.enqueue_trial(params, user_attrs={ATTR_BASELINE: True, ATTR_KNOBS: knobs}, skip_if_exists=False)


def baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(ATTR_BASELINE)
    ]
    return done[0] if done else None


def _contains(d: BaseDistribution, v: Any) -> bool:
    try:
        return d._contains(d.to_internal_repr(v))
    except (ValueError, TypeError):
        return False


@dataclass
class TuneReport:
    study: optuna.Study
    ran: list[int] = field(default_factory=list)
    interrupted: bool = False


def tune(
    spec: StudySpec,
    storage: str = DEFAULT_STORAGE,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    rerun_duplicates: bool = False,
    on_trial: Callable[[FrozenTrial], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TuneReport:
    """Run the study until it holds `n_trials` finished (complete or pruned) trials, or `timeout` passes."""
    from workbench.tracking import make_tracker
    from workbench.trials.environment import detect_device
    from workbench.trials.run import run_trial

    study = open_study(spec, storage)
    dists = distributions(spec)
    target = n_trials if n_trials is not None else spec.budget.n_trials
    tracker = make_tracker(
        tracking_uri, spec, storage_url=storage if isinstance(storage, str) else str(storage)
    )
    with _quiet_experimental():
        optuna.storages.fail_stale_trials(study)  # a process killed earlier: fail (and retry) its trial now
    tracker.reconcile(study)
    enqueue_baseline(study, spec, dists)
    device = detect_device(spec.trial.device)
    report = TuneReport(study)

    def objective(trial: optuna.Trial) -> Any:
        is_base = bool(trial.user_attrs.get(ATTR_BASELINE))
        if is_base and any(  # two processes starting together may both enqueue one: the first one wins
            t.user_attrs.get(ATTR_BASELINE) and t.number < trial.number and t.state != TrialState.FAIL
            for t in study.get_trials(deepcopy=False)
        ):
            is_base = False
            trial.set_user_attr(ATTR_BASELINE, False)
        if is_base:
            knobs = dict(trial.user_attrs[ATTR_KNOBS])
            for name, d in dists.items():  # record as params what the search space can hold
                if name in trial.params or _contains(d, knobs[name]):
                    trial._suggest(name, d)
        else:
            from workbench.trials.run import resolve_knobs

            knobs = resolve_knobs(spec, suggest(trial, dists))
            trial.set_user_attr(ATTR_KNOBS, knobs)
        if not rerun_duplicates:
            dup = _measured_before(study, knobs, trial.number)
            if dup is not None:
                trial.set_user_attr("duplicate_of", dup.number)
                for k in ("metrics", ATTR_CONSTRAINTS, "mlflow_run_id", "result_path"):
                    if k in dup.user_attrs:
                        trial.set_user_attr(k, dup.user_attrs[k])
                for k, v in dup.constraints.items():
                    trial.set_constraint(k, v)
                return dup.values if len(dup.values) > 1 else dup.values[0]
        t0 = time.perf_counter()
        base = baseline_trial(study)
        acc_key, reuse, gate = _accuracy_plan(study, spec, knobs, device, base, is_base)
        if acc_key:
            trial.set_user_attr("accuracy_key", acc_key)
        dashboard_url = trial_dashboard_url(study, trial.number)
        run_id = tracker.start_trial(trial.number, knobs, is_base, dashboard_url=dashboard_url)
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
            link_trial_to_run(study, trial, tracker.run_url(run_id))
        from workbench.study.scaleout import worker_identity

        me = worker_identity()
        trial.set_user_attr("worker", me)
        tracker.tag(run_id, {f"worker.{k}": v for k, v in me.items() if v})
        t1 = time.perf_counter()
        try:
            res = run_trial(
                spec,
                knobs,
                trial_id=f"{trial.number:04d}",
                out_dir=_trial_dir(spec, trial.number),
                device=device,
                accuracy_gate=gate,
                accuracy_reuse=reuse,
            )
        except BaseException as e:
            tracker.end_trial(run_id, None, failure=f"{type(e).__name__}: {e}")
            raise
        t2 = time.perf_counter()
        baseline_metrics = base.user_attrs.get("metrics") if base else (res.metrics if is_base else None)
        constraints = (
            constraint_values(spec, res.metrics, baseline_metrics) if res.status == "COMPLETE" else []
        )
        tracker.log_result(run_id, res, trial.number, baseline_metrics, constraints)
        t3 = time.perf_counter()
        _record(trial, res, constraints)
        for name, value in zip(constraint_names(spec), constraints, strict=False):
            trial.set_constraint(name, value)
        # where the trial's time went outside the worker: traceable orchestration overhead
        trial.set_user_attr(
            "orchestration_s",
            {
                "mlflow_start": t1 - t0,
                "run_trial": t2 - t1,
                "mlflow_log": t3 - t2,
                "optuna": time.perf_counter() - t3,
            },
        )
        if res.status == "INFEASIBLE":
            raise optuna.TrialPruned(res.failure.message if res.failure else "infeasible")
        if res.status != "COMPLETE":
            assert res.failure is not None
            if res.failure.kind == "interrupted":
                raise KeyboardInterrupt
            raise TrialFailed(f"{res.failure.kind}: {res.failure.message}")
        values = [res.metrics[o.metric] for o in spec.objectives]
        return values if len(values) > 1 else values[0]

    def after(study_: optuna.Study, frozen: FrozenTrial) -> None:
        report.ran.append(frozen.number)
        if on_trial is not None:
            on_trial(frozen)
        finished = len(study_.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        failed = len(study_.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if finished >= target or failed >= max(target, 3) * 2 or (should_stop is not None and should_stop()):
            study_.stop()

    if _finished(study) < target:
        try:
            study.optimize(
                objective, timeout=timeout, callbacks=[after], catch=(TrialFailed,), gc_after_trial=False
            )
        except KeyboardInterrupt:
            report.interrupted = True
    tracker.log_study(study, spec, interrupted=report.interrupted)
    return report


def _accuracy_plan(
    study: optuna.Study,
    spec: StudySpec,
    knobs: dict[str, Any],
    device: Any,
    base: FrozenTrial | None,
    is_base: bool,
) -> tuple[str | None, dict | None, dict | None]:
    """The trial's accuracy key, an earlier measurement to reuse (same weights), and the gate to apply."""
    if spec.accuracy is None:
        return None, None, None
    from workbench.engines import get_engine_class
    from workbench.knobs import split_knobs
    from workbench.trials.cache import artifact_material, build_key
    from workbench.trials.plan import TrialPlan

    engine_cls = get_engine_class(spec.engine)
    build_knobs, _ = split_knobs(engine_cls.knobs, knobs)
    plan = TrialPlan.make(spec, "key", knobs, device, Path("."), Path("."))
    key = build_key(artifact_material(plan, engine_cls, build_knobs))
    reuse = None
    if spec.accuracy.reuse != "never":
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            m = t.user_attrs.get("metrics", {})
            if (
                t.user_attrs.get("accuracy_key") == key
                and "gsm8k_score" in m
                and "duplicate_of" not in t.user_attrs
            ):
                keep = (
                    "gsm8k_strict",
                    "gsm8k_flexible",
                    "gsm8k_score",
                    "gsm8k_strict_stderr",
                    "gsm8k_flexible_stderr",
                    "gsm8k_n",
                )
                reuse = {"trial": t.number, "accuracy_key": key, "metrics": {k: m[k] for k in keep if k in m}}
                break
    gate = None
    drop = next(
        (
            c.max_drop_from_baseline
            for c in spec.constraints
            if c.metric == "gsm8k_score" and c.max_drop_from_baseline is not None
        ),
        None,
    )
    if (
        drop is not None
        and not is_base
        and base is not None
        and "gsm8k_score" in base.user_attrs.get("metrics", {})
    ):
        g = spec.accuracy.gate
        gate = {
            "baseline": base.user_attrs["metrics"]["gsm8k_score"],
            "max_drop": drop,
            "alpha": g.alpha,
            "beta": g.beta,
            "sigma": g.sigma,
            "sequential": g.sequential,
            "chunk": g.chunk,
            "baseline_trial": base.number,
        }
    return key, reuse, gate


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _trial_dir(spec: StudySpec, number: int) -> Any:
    from workbench.trials.run import workbench_home

    return (workbench_home() / "studies" / spec.name / f"trial-{number:04d}").resolve()


def _measured_before(study: optuna.Study, knobs: dict[str, Any], number: int) -> FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if (
            t.number != number
            and t.user_attrs.get(ATTR_KNOBS) == knobs
            and "duplicate_of" not in t.user_attrs
        ):
            return t
    return None


def _record(trial: optuna.Trial, res: TrialResult, constraints: list[float]) -> None:
    """What Optuna keeps of a trial: metrics, constraints, cause of failure, where the files are."""
    trial.set_user_attr("status", res.status)
    trial.set_user_attr("result_path", res.files.get("result", ""))
    if res.build.get("build_key"):
        trial.set_user_attr("build_key", res.build["build_key"])
    if res.failure is not None:
        trial.set_user_attr("failure_kind", res.failure.kind)
        trial.set_user_attr("failure", res.failure.message[:1000])
    if res.status == "COMPLETE":
        keep = {k: v for k, v in res.metrics.items() if isinstance(v, (int, float)) and not math.isnan(v)}
        trial.set_user_attr("metrics", keep)
        trial.set_user_attr(ATTR_CONSTRAINTS, constraints)


# --------------------------------------------------------------------------------------- inspection
def load_study(name: str, storage: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage))


def stored_spec(study: optuna.Study) -> StudySpec:
    """The study definition saved when the study was last opened by `tune`."""
    from pathlib import Path

    from workbench.spec import validate_spec

    data = study.user_attrs.get("spec")
    if data is None:
        raise KeyError(
            f"study {study.study_name!r} holds no definition: pass the study YAML instead of its name"
        )
    path = study.user_attrs.get("spec_path")
    return validate_spec(
        dict(data),
        source=f"the definition stored in study {study.study_name!r}",
        source_path=Path(path) if path else None,
    )


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial `number`, or the best one: the single best, or of a Pareto set the best on the first objective."""
    if number is not None:
        trials = study.get_trials(deepcopy=False)
        if not 0 <= number < len(trials):
            raise KeyError(f"study {study.study_name!r} has no trial {number} (it has {len(trials)})")
        t = trials[number]
        if t.state != TrialState.COMPLETE:
            raise KeyError(f"trial {number} of {study.study_name!r} is {t.state.name}, not COMPLETE")
        return t
    best = best_trials(study)
    if not best:
        raise KeyError(f"study {study.study_name!r} has no feasible completed trial yet")
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(best, key=lambda t: t.values[0], reverse=maximize)[0]


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: state, knobs, objective and key metrics, failure cause."""
    rows = []
    base = baseline_trial(study)
    base_m = base.user_attrs.get("metrics", {}) if base else {}
    for t in study.get_trials(deepcopy=False):
        m = t.user_attrs.get("metrics", {})
        row = {
            "number": t.number,
            "state": t.state.name,
            "baseline": bool(t.user_attrs.get(ATTR_BASELINE)),
            "feasible": is_feasible(t) if t.state == TrialState.COMPLETE else None,
            "knobs": t.user_attrs.get(ATTR_KNOBS, t.params),
            "metrics": m,
            "values": t.values,
            "failure": t.user_attrs.get("failure"),
            "failure_kind": t.user_attrs.get("failure_kind"),
            "duplicate_of": t.user_attrs.get("duplicate_of"),
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
            "mlflow_run_url": t.user_attrs.get("mlflow_run_url"),
        }
        if base_m.get("output_tok_s") and m.get("output_tok_s"):
            row["vs_baseline"] = m["output_tok_s"] / base_m["output_tok_s"]
        rows.append(row)
    return rows


def dashboard_base_url() -> str:
    """Where optuna-dashboard is served (`workbench dashboard` default), for links from MLflow runs."""
    import os

    return os.environ.get("WORKBENCH_DASHBOARD_URL", "http://127.0.0.1:8080").rstrip("/")


def trial_dashboard_url(study: optuna.Study, number: int) -> str:
    return f"{dashboard_base_url()}/dashboard/studies/{study._study_id}/trials?numbers={number}"


def link_trial_to_run(study: optuna.Study, trial: optuna.Trial, run_url: str) -> None:
    """The trial's user attr and its optuna-dashboard note both point at its MLflow run."""
    trial.set_user_attr("mlflow_run_url", run_url)
    try:
        from optuna_dashboard import save_note

        save_note(trial, f"MLflow run of this trial: [{run_url}]({run_url})")
    except Exception:  # noqa: BLE001 - the note is a convenience; the user attr carries the link
        pass


def trials_frame(study: optuna.Study) -> Any:
    """The trials as a pandas DataFrame: one row per trial, knobs and metrics as columns (for notebooks and plots)."""
    import pandas as pd

    records = []
    for r in trial_rows(study):
        rec = {k: v for k, v in r.items() if k not in ("knobs", "metrics", "values")}
        rec.update(r["knobs"] or {})
        rec.update(r["metrics"] or {})
        records.append(rec)
    return pd.DataFrame.from_records(records)


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best feasible trial (one objective) or the feasible Pareto set (several)."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(t) and "duplicate_of" not in t.user_attrs
    ]
    if not done:
        return []
    dirs = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]

    def dominates(a: FrozenTrial, b: FrozenTrial) -> bool:
        better = [(x >= y) if mx else (x <= y) for x, y, mx in zip(a.values, b.values, dirs, strict=True)]
        strictly = [(x > y) if mx else (x < y) for x, y, mx in zip(a.values, b.values, dirs, strict=True)]
        return all(better) and any(strictly)

    front = [t for t in done if not any(dominates(o, t) for o in done if o is not t)]
    return sorted(front, key=lambda t: t.number)
