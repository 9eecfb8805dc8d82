"""The SQLite MLflow store is made whole or not at all; a half-made one without runs is repaired.

A kill during MLflow's first creation of a SQLite store used to leave a file no later open could use
("table trace_info already exists", found by the kill campaign). A half-made file is produced here
deterministically: a complete store whose alembic stamp is set back before the trace tables and that
lacks a table MLflow expects, so opening it re-runs migrations over tables that exist: the same error.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from workbench.tracking.sqlite_store import TrackingStoreError, ensure_sqlite_store

BEFORE_TRACE_TABLES = "acf3f17fdcc7"
#: MLflow opening a store in a fresh process (its engines are cached per URI inside one)
OPEN = "import sys; from mlflow import MlflowClient; MlflowClient(tracking_uri='sqlite:///' + sys.argv[1]).search_experiments()"  # the revision before 867495a8f9d4, which creates trace_info


def half_made(db) -> None:
    ensure_sqlite_store(f"sqlite:///{db}")
    break_schema(db)


def break_schema(db) -> None:
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = ?", (BEFORE_TRACE_TABLES,))
    con.execute("DROP TABLE scheduler_leases")
    con.commit()
    con.close()


def opens(db) -> bool:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments() is not None


def test_a_new_store_is_made_whole_with_nothing_left_beside_it(tmp_path):
    db = tmp_path / "mlruns" / "mlflow.db"
    ensure_sqlite_store(f"sqlite:///{db}")
    assert opens(db)
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]


def test_a_half_made_store_without_runs_is_moved_aside_and_made_again(tmp_path, caplog):
    db = tmp_path / "mlflow.db"
    half_made(db)
    (tmp_path / "mlflow.db-journal").write_bytes(b"")  # a killed writer's journal goes with its database
    saw = subprocess.run(
        [sys.executable, "-c", OPEN, str(db)], capture_output=True, text=True
    )  # what users saw
    assert saw.returncode != 0 and "table trace_info already exists" in saw.stderr
    ensure_sqlite_store(f"sqlite:///{db}")
    assert opens(db)
    aside = sorted(p.name for p in tmp_path.iterdir() if ".half-made-" in p.name)
    assert len(aside) == 2 and aside[1] == aside[0] + "-journal" and "moved to" in caplog.text
    assert not (tmp_path / "mlflow.db-journal").exists()


def test_a_broken_store_with_runs_is_left_alone_with_a_clear_error(tmp_path):
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    ensure_sqlite_store(f"sqlite:///{db}")
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    client.create_run(client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri()))
    client._tracking_client.store.engine.dispose()
    break_schema(db)
    before = db.read_bytes()
    with pytest.raises(TrackingStoreError, match=r"holds 1 runs.*mlflow db upgrade"):
        ensure_sqlite_store(f"sqlite:///{db}")
    assert db.read_bytes() == before and [p.name for p in tmp_path.iterdir() if "half" in p.name] == []


def test_kill_during_creation_leaves_no_half_made_store(tmp_path):
    """Killed at any moment, the final path is absent or opens: never half-made."""
    code = "import sys; from workbench.tracking.sqlite_store import ensure_sqlite_store as e; e(sys.argv[1])"
    for i, delay in enumerate((0.8, 1.6, 2.4)):
        db = tmp_path / f"k{i}" / "mlflow.db"
        p = subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{db}"])
        time.sleep(delay)
        p.kill()
        p.wait()
        assert not db.exists() or opens(db), f"killed after {delay} s: half-made"
        ensure_sqlite_store(f"sqlite:///{db}")  # and the next start makes it
        assert opens(db)
        assert [
            p.name for p in db.parent.iterdir() if "creating" in p.name
        ] == []  # the killed one's temporary went
