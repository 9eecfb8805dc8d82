"""A SQLite MLflow store made in one step: built under a temporary name, renamed when complete.

MLflow creates a new SQLite database by running its schema migrations one after the other (about
4 s on our machines). A process killed meanwhile (kill -9 of `tune`, a closed notebook kernel) left a
file no later open could repair: "table trace_info already exists" (found by the kill campaign,
docs/benchmarks.md). So the workbench builds the store beside the final path and renames it only once
complete; rename is atomic on one file system, so the final path is either absent or whole.

A file left half-made by an earlier version fails to open ("table ... already exists", or a schema
stamp short of the last migration); holding no runs, it is moved aside (renamed, never deleted) and
the store is made again, with a warning naming both paths. One holding runs is never touched: the
error says what to do (an older MLflow's store with runs needs `mlflow db upgrade`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

from workbench.types import WorkbenchError


class TrackingStoreError(WorkbenchError, RuntimeError):
    """The MLflow store cannot be opened and the workbench will not repair it by itself."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (relative or absolute), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def ensure_sqlite_store(uri: str, artifact_root: str | None = None) -> None:
    """Make the SQLite store of `uri` if it does not exist yet, atomically; repair a half-made one
    that holds no runs. Callers hold `init_lock(uri)`: one process creates, the others wait."""
    db = sqlite_path(uri)
    if db is None:
        return
    if db.exists():
        if not _opens(db, artifact_root):
            _move_aside_if_empty(db)
            _create(db, artifact_root)
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    _create(db, artifact_root)


def _store(db: Path, artifact_root: str | None) -> None:
    """Open (and so create or migrate) the store at `db`, then drop its connections.

    MLflow keeps one engine per URI for the life of the process (`SqlAlchemyStore._engine_map`); an
    engine left there after a failed open would keep a connection to a file this module renames."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{db}"
    root = artifact_root or (db.parent / "artifacts").resolve().as_uri()
    try:
        SqlAlchemyStore(uri, root)
    finally:
        engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
        if engine is not None:
            engine.dispose()


#: SQLite's files beside a database: a hot journal left by a killed writer belongs to its database
SIDE_FILES = ("-journal", "-wal", "-shm")


def _create(db: Path, artifact_root: str | None) -> None:
    _remove_stale_temporaries(db)
    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
    try:
        _store(tmp, artifact_root)
        os.replace(tmp, db)
    finally:
        for path in (tmp, *(Path(f"{tmp}{s}") for s in SIDE_FILES)):
            path.unlink(missing_ok=True)


def _remove_stale_temporaries(db: Path) -> None:
    """Temporary stores of creators that were killed (their process is gone); callers hold the lock."""
    for tmp in db.parent.glob(f".{db.name}.creating-*"):
        m = re.search(r"\.creating-(\d+)(-journal|-wal|-shm)?$", tmp.name)
        if m and not _alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _opens(db: Path, artifact_root: str | None) -> bool:
    """Whether MLflow opens the existing file. False for what a kill mid-creation leaves: migrations
    re-run over tables they made ("already exists"), or a stamp short of the last migration."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    try:
        _store(db, artifact_root)
    except OperationalError as e:
        if "already exists" in str(e):
            return False
        raise
    except MlflowException as e:
        if "out-of-date database schema" in str(e):
            return False
        raise
    return True


def _move_aside_if_empty(db: Path) -> None:
    runs = _count_runs(db)
    if runs:
        raise TrackingStoreError(
            f"{db}: MLflow cannot open this tracking database (its schema is half-migrated or older than this "
            f"MLflow's) and it holds {runs} runs, so the workbench leaves it alone; back it up and run `mlflow db upgrade "
            f"sqlite:///{db}`, or point MLFLOW_TRACKING_URI at another store"
        )
    aside = db.with_name(f"{db.name}.half-made-{time.strftime('%Y%m%d-%H%M%S')}")
    for side in SIDE_FILES:  # a hot journal must go with its database, or SQLite replays it into the new one
        if Path(f"{db}{side}").exists():
            os.replace(f"{db}{side}", f"{aside}{side}")
    os.replace(db, aside)
    import logging

    logging.getLogger("workbench").warning(
        "%s was left half-made by a process killed while creating it (no runs in it): moved to %s and made again",
        db,
        aside,
    )


def _count_runs(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # no runs table yet: nothing was ever logged
        return 0
    finally:
        con.close()
