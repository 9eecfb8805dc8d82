"""Where studies live: any Optuna storage URL, made safe for several processes, and the study in it.

RDB storages get a heartbeat, so the trial of a killed process is failed and retried. SQLite needs
one more thing: pysqlite opens no transaction for a SELECT, so two processes could both pop one
WAITING trial (Optuna's FOR UPDATE is a no-op there); autocommit plus BEGIN IMMEDIATE serialises them.
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from workbench.spec import StudySpec
from workbench.study.errors import StudyMismatch
from workbench.study.pruning import make_pruner
from workbench.study.recovery import CleanRetry
from workbench.study.space import make_sampler

HEARTBEAT_S = 2
GRACE_S = 10


def redact(url: str) -> str:
    """A storage or tracking URL without its password, for logs and tags."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Optuna's heartbeat, GP sampler and metric names are experimental: their warnings say nothing new."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def make_storage(
    url: str, heartbeat_s: int = HEARTBEAT_S, grace_s: int = GRACE_S
) -> optuna.storages.BaseStorage:
    """Any Optuna storage URL. RDB storages get a heartbeat, so a killed process's trial is failed and retried."""
    if url.startswith("journal:") or url.endswith((".log", ".jsonl")):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    import sqlalchemy.exc

    for attempt in range(6):  # several workers starting on an empty database race to create its tables
        try:
            return _rdb_storage(url, heartbeat_s, grace_s)
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
            sqlalchemy.exc.OperationalError,
        ):
            if attempt == 5:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _rdb_storage(url: str, heartbeat_s: int, grace_s: int) -> optuna.storages.RDBStorage:
    import sqlalchemy

    sqlite = url.startswith("sqlite")
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if sqlite:
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}}
    with quiet_experimental():
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_s,
            grace_period=grace_s,
            heartbeat_stale_trial_callback=CleanRetry(),
        )
    if sqlite:
        sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
    return storage


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def as_storage(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    return make_storage(storage) if isinstance(storage, str) else storage


def open_study(spec: StudySpec, storage: str | optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it by name; a changed objective is an error, not a silent mix."""
    directions = [o.direction for o in spec.objectives]
    names = [o.metric for o in spec.objectives]
    study = optuna.create_study(
        study_name=spec.name,
        storage=as_storage(storage),
        directions=directions,
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
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
        with quiet_experimental():
            study.set_metric_names(names)
    continue_sampler(study, spec)
    return study


def continue_sampler(study: optuna.Study, spec: StudySpec) -> None:
    """A resumed study goes on with its sampler instead of replaying it from the start.

    Optuna does not store a sampler's random state, so a study reopened with `seed` would propose
    its start-up knobs again. The seed is moved on by the number of trials already in the study
    (a new study keeps `seed` itself, so a run from scratch reproduces).
    """
    n = len(study.get_trials(deepcopy=False))
    if n and spec.sampler.seed is not None:
        study.sampler = make_sampler(spec, seed=spec.sampler.seed + n)


def load_study(name: str, storage: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage))


def stored_spec(study: optuna.Study) -> StudySpec:
    """The study definition saved when the study was last opened by `tune`."""
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
