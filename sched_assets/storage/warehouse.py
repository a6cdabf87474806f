"""The DuckDB warehouse: one database file, opened briefly and one process at a time.

Every connection is short-lived and taken under the cross-process lock in `locking`, so any number
of processes (Dagster's multiprocess executor, `dagster dev`, a CLI) take turns instead of failing
on DuckDB's single-writer rule.

DuckDB itself (and the write machinery) is imported when a connection is opened or a
table written, not with this module: the Dagster definitions build `Warehouse`s without using them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Column, table_columns
from .errors import TableNotFoundError, WarehouseError, WarehouseLockedError
from .locking import backoff_delays, file_lock, lock_path_for
from .naming import TableName, quote_literal

if TYPE_CHECKING:
    import duckdb

    from .write import TableWrite, WriteResult

_DUCKDB_LOCK_MESSAGE = "Could not set lock"
_held = threading.local()  # databases this thread has open, to catch self-deadlocking nested connects


class Warehouse:
    """A DuckDB database file with transactional, schema-evolving table writes."""

    def __init__(
        self,
        path: str | Path,
        lock_timeout: float = 300.0,
        memory_limit: str | None = None,
        threads: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """`config`: extra DuckDB settings given to `duckdb.connect` (`memory_limit`/`threads` win)."""
        self.path = Path(path).expanduser().absolute()
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit
        self.threads = threads
        self.config = dict(config or {})

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        """The sidecar file every process locks before opening the database."""
        return lock_path_for(self.path)

    def check_writable(self) -> None:
        """Fail fast with a clear `WarehouseError` if the database file cannot be created or written.

        Does not open the database (so it never waits for another process's lock).
        """
        self._prepare_directory()
        try:
            os.close(os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666))
        except OSError as exc:
            raise self._unwritable(exc.strerror or str(exc)) from exc
        if self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK):
            raise self._unwritable("permission denied")

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the database for the duration of the block, holding the cross-process lock.

        Readers share the lock; a writer has it alone. Waits up to `lock_timeout` seconds, then
        raises `WarehouseLockedError`. Do not nest connects in one thread (that would wait on itself).
        """
        key = str(self.path)
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

    def write(self, table: str, write: TableWrite) -> WriteResult:
        """Write to `"schema.name"` in one transaction (see `TableWrite` and `write.execute_write`)."""
        from .write import execute_write

        name = TableName.parse(table)
        with self.connect() as con:
            return execute_write(con, name, write)

    def table_exists(self, table: str) -> bool:
        """Whether `"schema.name"` exists (False when the database file does not exist yet)."""
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as con:
            return table_columns(con, TableName.parse(table)) is not None

    def columns(self, table: str) -> list[Column]:
        """The table's `(name, DuckDB type)` pairs in table order; `TableNotFoundError` if missing."""
        name = TableName.parse(table)
        with self.connect(read_only=True) as con:
            return self._require_columns(con, name)

    # -- internals ---------------------------------------------------------------------------

    def _require_columns(self, con: duckdb.DuckDBPyConnection, table: TableName) -> list[Column]:
        columns = table_columns(con, table)
        if columns is None:
            raise TableNotFoundError(f"table {table} does not exist in {self.path}")
        return columns

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
            "set SCHED_DUCKDB_PATH to a writable file"
        )

    def _open(self, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
        """Connect, retrying while a program outside our lock (e.g. the duckdb CLI) holds the file."""
        import duckdb

        delays = backoff_delays(first=0.1, cap=2.0)
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=self.config)
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
