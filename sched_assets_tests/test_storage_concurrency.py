"""Cross-process behaviour: locking, lock timeouts, unwritable paths and kill -9 mid-write."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sched_assets.storage import TableWrite, Warehouse, WarehouseError, WarehouseLockedError

TABLE = "raw.things"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a Python child running `code` with the project importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_rows(warehouse: Warehouse, table: str = TABLE) -> list[tuple]:
    """Every row of `table`, sorted, read under the shared (reader) lock."""
    with warehouse.connect(read_only=True) as con:
        return con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(
                f"child exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def test_kill_9_mid_write_leaves_previous_state(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    warehouse = Warehouse(db, lock_timeout=30)
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}), "replace"))
    marker = tmp_path / "paused"

    child = run_python(
        f"""
        import polars as pl
        from sched_assets.storage import TableWrite, Warehouse
        from sched_assets_tests.crash_hooks import pause_before_commit
        pause_before_commit({str(marker)!r})
        frame = pl.DataFrame({{"id": list(range(100, 50_100)), "name": ["new"] * 50_000, "more": [1] * 50_000}})
        Warehouse({str(db)!r}).write({TABLE!r}, TableWrite(frame, "replace"))
        """
    )
    wait_for(marker, child)  # the child is inside the transaction, rows inserted, not committed
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    assert child.returncode == -signal.SIGKILL
    assert read_rows(warehouse) == [(1, "a"), (2, "b"), (3, "c")]
    assert warehouse.columns(TABLE) == [("id", "BIGINT"), ("name", "VARCHAR")]
    # The dead process's lock died with it: the next write goes through.
    result = warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [4], "name": ["d"]}), "merge", ("id",)))
    assert result.rows_in_table == 4


def test_two_processes_writing_at_once_both_succeed(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    go = tmp_path / "go"
    code = """
        import sys, time
        from pathlib import Path
        import polars as pl
        from sched_assets.storage import TableWrite, Warehouse
        worker = int(sys.argv[1]) if len(sys.argv) > 1 else {worker}
        while not Path({go!r}).exists():
            time.sleep(0.01)
        warehouse = Warehouse({db!r}, lock_timeout=60)
        for batch in range(5):
            ids = [worker * 1000 + batch * 10 + i for i in range(10)]
            frame = pl.DataFrame({{"id": ids, "worker": [worker] * 10}})
            warehouse.write("raw.things", TableWrite(frame, "merge", ("id",)))
            warehouse.write(f"raw.only_{{worker}}", TableWrite(frame, "replace"))
            with warehouse.connect(read_only=True) as con:
                con.sql("SELECT count(*) FROM raw.things").fetchall()
    """
    children = [run_python(code.format(worker=w, go=str(go), db=str(db))) for w in (1, 2)]
    go.touch()

    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err

    things = read_rows(Warehouse(db))
    assert len(things) == 100
    assert len({row[0] for row in things}) == 100
    assert [sum(1 for _, worker in things if worker == w) for w in (1, 2)] == [50, 50]
    assert len(read_rows(Warehouse(db), "raw.only_1")) == 10


def test_lock_timeout_gives_clear_error(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "busy.duckdb", lock_timeout=0.3)
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))
    fd = os.open(warehouse.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another "process" (a separate open file) holds the lock
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as caught:
            warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [2]}), "replace"))
        assert time.monotonic() - started >= 0.3
        message = str(caught.value)
        assert str(warehouse.path) in message and "lock_timeout_seconds" in message
        with pytest.raises(WarehouseLockedError):
            read_rows(warehouse)  # readers wait for writers too
    finally:
        os.close(fd)
    assert read_rows(warehouse) == [(1,)]


def test_readers_share_the_lock(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "shared.duckdb", lock_timeout=0.3)
    warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))
    fd = os.open(warehouse.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # another reader
    try:
        assert read_rows(warehouse) == [(1,)]
        with pytest.raises(WarehouseLockedError):
            warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [2]}), "replace"))
    finally:
        os.close(fd)


def test_program_outside_our_lock_holding_the_file(tmp_path: Path) -> None:
    """E.g. a duckdb CLI session: we retry DuckDB's own lock error, then fail clearly."""
    db = tmp_path / "cli.duckdb"
    Warehouse(db).write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))
    opened = tmp_path / "opened"
    child = run_python(
        f"""
        import duckdb, time
        from pathlib import Path
        con = duckdb.connect({str(db)!r})
        Path({str(opened)!r}).touch()
        time.sleep(float(60))
        """
    )
    try:
        wait_for(opened, child)
        with pytest.raises(WarehouseLockedError, match="another program holds"):
            read_rows(Warehouse(db, lock_timeout=0.5))
    finally:
        child.kill()
        child.wait()
    assert read_rows(Warehouse(db, lock_timeout=5)) == [(1,)]


def test_unwritable_path_gives_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a directory should be")
    warehouse = Warehouse(blocker / "sched.duckdb")

    with pytest.raises(WarehouseError, match=r"cannot create/write DuckDB database at .*SCHED_DUCKDB_PATH"):
        warehouse.check_writable()
    with pytest.raises(WarehouseError, match="SCHED_DUCKDB_PATH"):
        warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))


def test_directory_as_database_path_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="it is a directory"):
        Warehouse(tmp_path).check_writable()


def test_check_writable_does_not_open_the_database(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "deep" / "new.duckdb")
    warehouse.check_writable()
    assert warehouse.path.parent.is_dir()
    assert not warehouse.path.exists()


def test_nested_connect_in_one_thread_is_refused(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "x.duckdb")
    with warehouse.connect(), pytest.raises(WarehouseError, match="already open in this thread"):
        warehouse.write(TABLE, TableWrite(pl.DataFrame({"id": [1]}), "replace"))


def test_connection_is_closed_after_the_block(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "x.duckdb")
    with warehouse.connect() as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")


def test_kill_9_between_commits_keeps_the_committed_groups(tmp_path: Path) -> None:
    """A writer checkpoints only when it closes the file: groups it committed before a kill -9 live in
    DuckDB's log alone, and the next open must replay them; the open transaction is gone."""
    db = tmp_path / "groups.duckdb"
    marker = tmp_path / "paused"
    child = run_python(
        f"""
        import os, time
        from pathlib import Path
        import polars as pl
        from sched_assets.storage import TableWrite, Warehouse, write

        commit, commits = write._commit, []

        def third_pauses(con):
            if len(commits) == 2:
                Path({str(marker)!r}).write_text(str(os.getpid()))
                time.sleep(120)
            commit(con)
            commits.append(1)

        write._commit = third_pauses
        groups = [
            [({TABLE!r}, TableWrite(pl.DataFrame({{"id": [g * 10 + i for i in range(3)], "g": [g] * 3}}), "merge", ("id",)))]
            for g in (1, 2, 3)
        ]
        Warehouse({str(db)!r}).write_groups(groups)
        """
    )
    wait_for(marker, child)  # two groups committed, the third inside its transaction
    assert Path(f"{db}.wal").exists()  # not checkpointed: the two commits are in the log only
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    assert read_rows(Warehouse(db)) == [(10, 1), (11, 1), (12, 1), (20, 2), (21, 2), (22, 2)]
