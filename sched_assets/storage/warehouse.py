"""The warehouse: a DuckDB database file, or a DuckLake catalog with its data files (see `lake`).

DuckDB file: every connection is short-lived and taken under the cross-process lock in `locking`, so
any number of processes (Dagster's multiprocess executor, `dagster dev`, a CLI) take turns instead of
failing on DuckDB's single-writer rule.

DuckLake (`ducklake:postgres:...` / `ducklake:sqlite:...`): no lock; many processes, on many machines
for a Postgres catalog, read and write at once. A transaction that loses a commit race to another
writer is re-run from the start (`transaction_with_retries`, used by `write`), a bounded number of times.

DuckDB itself (and the write machinery) is imported when a connection is opened or a
table written, not with this module: the Dagster definitions build `Warehouse`s without using them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .catalog import Column, table_columns
from .errors import TableNotFoundError, WarehouseError, WarehouseLockedError
from .lake import (
    DATABASE_ENV,
    LakeKey,
    WarehouseLocation,
    forget_lake,
    is_broken_connection,
    lake_connection,
    normalized_data_path,
)
from .locking import Retried, RetryPolicy, backoff_delays, file_lock, lock_path_for, retry_conflicts
from .naming import TableName, quote_literal

if TYPE_CHECKING:
    import duckdb

    from .write import TableWrite, WriteResult

T = TypeVar("T")

_DUCKDB_LOCK_MESSAGE = "Could not set lock"
# Rows per row group of what a write connection stores (DuckDB's default: 122,880). A large insert
# compresses and writes each full row group during the INSERT instead of holding the transaction's
# rows (spilled past the write's memory limit) until COMMIT: 100,000 nested bookings with history,
# 5.2 -> 4.2 s at 96 MB (30,720 rows). Fewer rows keep a group of wide rows (nested bookings, ~3.4 kB)
# inside that budget, unspilled: 2.4 -> 2.0 s, while standard rows lose ~0.05 s of 0.75 s. One size
# for every connection of ours: a checkpoint merges the row groups of every table smaller than its
# connection's size, so a per-write size would rewrite whole tables. Not stored in the file: only
# write connections (which ATTACH) use it; readers read any size.
_ROW_GROUP_ROWS = 12_288
_FILE_ALIAS = "warehouse"  # the catalog name of the file on a write connection
_held = threading.local()  # databases this thread has open, to catch self-deadlocking nested connects


def _sessions() -> dict[str, duckdb.DuckDBPyConnection]:
    """This thread's open `Warehouse.writing()` blocks: database file -> the connection kept open."""
    return _held.__dict__.setdefault("sessions", {})


class Warehouse:
    """A DuckDB database file or a DuckLake catalog, with transactional, schema-evolving table writes."""

    def __init__(
        self,
        path: str | os.PathLike[str] | WarehouseLocation,
        lock_timeout: float = 300.0,
        memory_limit: str | None = None,
        threads: int | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        data_path: str | os.PathLike[str] | None = None,
        commit_attempts: int = RetryPolicy.attempts,
    ) -> None:
        """`path`: a DuckDB file, or `ducklake:postgres:<conninfo>` / `ducklake:sqlite:<path>` (see `lake`).

        `config`: extra DuckDB settings given to `duckdb.connect` (`memory_limit`/`threads` win).
        `data_path`: the DuckLake data folder or object-storage URL (SCHED_DUCKLAKE_DATA_PATH); needed
        by a DuckLake warehouse when it connects, ignored for a file. `commit_attempts`: how often a
        transaction that conflicts with another writer runs in all (DuckLake; see `retry_conflicts`).
        """
        self.location = WarehouseLocation.parse(path)
        self.data_path = str(data_path) if data_path is not None else None
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit
        self.threads = threads
        self.config = dict(config or {})
        self.retry_policy = RetryPolicy(attempts=commit_attempts)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.location)!r})"

    @property
    def path(self) -> Path:
        """The DuckDB database file (a DuckLake warehouse has none: see `location`)."""
        if self.location.is_lake:
            raise WarehouseError(f"{self.location} is a DuckLake catalog, not a DuckDB file")
        return Path(self.location.target)

    @property
    def lock_path(self) -> Path:
        """The sidecar file every process locks before opening the database file."""
        return lock_path_for(self.path)

    def check_writable(self) -> None:
        """Fail fast with a clear `WarehouseError` if the warehouse cannot be created or written.

        A file is not opened (so this never waits for another process's lock); a DuckLake catalog is
        attached (created if new), which checks the connection string, the server and the data path.
        """
        if self.location.is_lake:
            with self.connect():
                return
        self._prepare_directory()
        try:
            os.close(os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666))
        except OSError as exc:
            raise self._unwritable(exc.strerror or str(exc)) from exc
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            raise self._unwritable("permission denied")

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse for the duration of the block.

        DuckDB file: under the cross-process lock. Readers share the lock; a writer has it alone. Waits
        up to `lock_timeout` seconds, then raises `WarehouseLockedError`. Do not nest connects in one
        thread (that would wait on itself). DuckLake: no lock (conflicts show at COMMIT: use
        `transaction_with_retries`); `read_only` attaches the catalog read-only.
        """
        if self.location.is_lake:
            with self._connect_lake(read_only) as con:
                yield con
            return
        key = str(self.path)
        session = _sessions().get(key)
        if session is not None:
            # Inside `writing()`: a connection of its own on the database the session keeps open.
            con = session.cursor()
            try:
                con.execute(f"USE {_FILE_ALIAS}")
                self._configure(con)
                yield con
            finally:
                con.close()
            return
        held: set[str] = _held.__dict__.setdefault("paths", set())
        if key in held:
            raise WarehouseError(
                f"{self.path} is already open in this thread; use that connection instead of nesting connect()"
            )
        if read_only and not self.path.exists():
            raise TableNotFoundError(f"no DuckDB database at {self.path} yet; materialize the assets first")
        if not read_only:
            self._prepare_directory()
        deadline = time.monotonic() + self.lock_timeout
        held.add(key)
        try:
            with file_lock(self.lock_path, self.path, shared=read_only, timeout=self.lock_timeout):
                con = self._open(read_only, deadline)
                try:
                    self._configure(con)
                    yield con
                finally:
                    con.close()
        finally:
            held.discard(key)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Keep the DuckDB file open, under the writer's lock, for this thread's connects in the block.

        A step that writes several tables in a row (a sync: seven raw tables and a history) opens the
        file once and checkpoints it once, instead of per table (~50 ms each). Every `connect` of this
        thread in the block, reading or writing, is a connection on the open database. A no-op for
        DuckLake, whose connections share the process's attached catalog anyway.
        """
        if self.location.is_lake:
            yield
            return
        with self.connect() as con:
            sessions = _sessions()
            sessions[str(self.path)] = con
            try:
                yield
            finally:
                del sessions[str(self.path)]

    def transaction_with_retries(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, what: str = "transaction"
    ) -> Retried[T]:
        """Run `fn(con)` on a fresh connection; re-run it on a new one while it loses commit races.

        `fn` runs one whole transaction (its own BEGIN ... COMMIT, rolling back on errors) that is safe
        to re-run from the start. Conflicts ("Transaction conflict", SQLite's "database is locked")
        are retried up to `commit_attempts` runs in all, with jittered backoff, then
        `WarehouseConflictError`; any other error propagates at once. Returns `fn`'s value and the
        number of retries. On a DuckDB file (one writer at a time) nothing ever conflicts.
        """

        def attempt() -> T:
            with self.connect() as con:
                return fn(con)

        return retry_conflicts(attempt, self.retry_policy, what=what)

    def write(self, table: str, write: TableWrite) -> WriteResult:
        """Write to `"schema.name"` in one transaction (see `TableWrite` and `write.execute_write`).

        The transaction is re-run when it conflicts with another writer (DuckLake); the result's
        `commit_retries` says how many times.
        """
        from .write import execute_write

        name = TableName.parse(table)
        retried = self.transaction_with_retries(
            lambda con: execute_write(con, name, write), what=f"write to {name}"
        )
        result = retried.value
        result.commit_retries = retried.retries
        return result

    def write_all(self, table: str, writes: Sequence[TableWrite]) -> list[WriteResult]:
        """Several writes to one table (one per account of a run), each its own transaction, on one
        connection: opening a DuckDB file costs ~30 ms (with its checkpoint), a write of a small
        account ~8 ms. A write that loses a commit race is re-run on the same connection (it rolled
        back); the first write that fails stops the rest, the earlier ones stay committed.
        """
        from .write import execute_write

        name = TableName.parse(table)
        results = []
        with self.connect() as con:
            for write in writes:
                retried = retry_conflicts(
                    lambda write=write: execute_write(con, name, write),
                    self.retry_policy,
                    what=f"write to {name}",
                )
                retried.value.commit_retries = retried.retries
                results.append(retried.value)
        return results

    def write_groups(
        self, groups: Sequence[Sequence[tuple[str, TableWrite]]]
    ) -> list[list[WriteResult] | Exception]:
        """Each group of writes (one account's tables) in one transaction of its own, on one connection.

        A group that loses a commit race is re-run (it rolled back); a group that fails otherwise is
        returned as its exception, and the next groups are still written.
        """
        from .write import execute_writes

        outcomes: list[list[WriteResult] | Exception] = []
        with self.connect() as con:
            for group in groups:
                named = [(TableName.parse(table), write) for table, write in group]
                try:
                    retried = retry_conflicts(
                        lambda named=named: execute_writes(con, named), self.retry_policy, what="write"
                    )
                except Exception as exc:
                    outcomes.append(exc)
                    continue
                for result in retried.value:
                    result.commit_retries = retried.retries
                outcomes.append(retried.value)
        return outcomes

    def table_exists(self, table: str) -> bool:
        """Whether `"schema.name"` exists (False when the database or catalog does not exist yet)."""
        if not self.location.is_lake and not self.path.exists():
            return False
        try:
            with self.connect(read_only=True) as con:
                return table_columns(con, TableName.parse(table)) is not None
        except TableNotFoundError:  # a DuckLake catalog not created yet
            return False

    def columns(self, table: str) -> list[Column]:
        """The table's `(name, DuckDB type)` pairs in table order; `TableNotFoundError` if missing."""
        name = TableName.parse(table)
        with self.connect(read_only=True) as con:
            return self._require_columns(con, name)

    def release(self) -> None:
        """Close this process's attached DuckLake databases for this warehouse (read-only and read-write).

        The next `connect` attaches again (about 0.3 s). A no-op for a DuckDB file, whose connections
        never outlive their block.
        """
        if not self.location.is_lake or self.data_path is None:
            return
        for read_only in (False, True):
            forget_lake(self._lake_key(read_only), close=True)

    # -- internals ---------------------------------------------------------------------------

    def _require_columns(self, con: duckdb.DuckDBPyConnection, table: TableName) -> list[Column]:
        columns = table_columns(con, table)
        if columns is None:
            raise TableNotFoundError(f"table {table} does not exist in {self.location}")
        return columns

    @contextlib.contextmanager
    def _connect_lake(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection on this process's attached lake; errors never show the catalog's password."""
        key = self._lake_key(read_only)
        con = lake_connection(key)
        failure: BaseException | None = None
        try:
            self._configure(con)
            yield con
        except BaseException as exc:
            if is_broken_connection(exc):
                forget_lake(key)
            redacted = self.location.redact(str(exc))
            if redacted == str(exc):
                raise
            failure = WarehouseError(redacted)
        finally:
            con.close()
        if failure is not None:
            raise failure from None  # the original (with the password) is neither shown nor serialized

    def _lake_key(self, read_only: bool) -> LakeKey:
        settings = {str(k): str(v) for k, v in self.config.items()}
        if self.memory_limit:
            settings["memory_limit"] = self.memory_limit
        if self.threads:
            settings["threads"] = str(int(self.threads))
        return LakeKey(
            location=self.location,
            data_path=normalized_data_path(self.data_path),
            read_only=read_only,
            settings=tuple(sorted(settings.items())),
        )

    def _prepare_directory(self) -> None:
        if self.path.is_dir():
            raise self._unwritable("it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(
                f"cannot create directory {self.path.parent}: {exc.strerror or exc}"
            ) from exc

    def _unwritable(self, reason: str) -> WarehouseError:
        return WarehouseError(
            f"cannot create/write DuckDB database at {self.path}: {reason}; "
            f"set {DATABASE_ENV} to a writable file"
        )

    def _open(self, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
        """Connect, retrying while a program outside our lock (e.g. the duckdb CLI) holds the file.

        A reader opens the file; a writer attaches it (as `_FILE_ALIAS`, made current) to set the row
        group size of what it stores (`_ROW_GROUP_ROWS`)."""
        import duckdb

        delays = backoff_delays(first=0.1, cap=2.0)
        while True:
            try:
                if read_only:
                    return duckdb.connect(str(self.path), read_only=True, config=self.config)
                return self._attach_for_writing()
            except duckdb.IOException as exc:
                if _DUCKDB_LOCK_MESSAGE not in str(exc):
                    raise self._open_error(read_only, exc) from exc
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WarehouseLockedError(
                        f"timed out after {self.lock_timeout:g}s: another program holds DuckDB database "
                        f"{self.path} open ({exc}). Close it (e.g. a duckdb CLI or notebook session) and retry."
                    ) from exc
                time.sleep(min(next(delays), remaining))
            except duckdb.Error as exc:
                raise self._open_error(read_only, exc) from exc

    def _attach_for_writing(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        # Spills go next to the file, as when DuckDB opens it (an in-memory connection's are in ./.tmp).
        con = duckdb.connect(config={"temp_directory": f"{self.path}.tmp", **self.config})
        try:
            con.execute(
                f"ATTACH {quote_literal(str(self.path))} AS {_FILE_ALIAS} (ROW_GROUP_SIZE {_ROW_GROUP_ROWS})"
            )
            con.execute(f"USE {_FILE_ALIAS}")
        except BaseException:
            con.close()
            raise
        return con

    def _open_error(self, read_only: bool, exc: Exception) -> WarehouseError:
        if read_only:
            return WarehouseError(f"cannot open DuckDB database at {self.path}: {exc}")
        return self._unwritable(str(exc))

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        # Insertion order is not needed (dedupe uses explicit ordinals) and keeping it costs memory.
        con.execute("SET preserve_insertion_order = false")
        # Naive timestamps are UTC, and TIMESTAMPTZ comes back as UTC.
        con.execute("SET TimeZone = 'UTC'")
        if self.memory_limit:
            con.execute(f"SET memory_limit = {quote_literal(self.memory_limit)}")
        if self.threads:
            con.execute(f"SET threads = {int(self.threads)}")
