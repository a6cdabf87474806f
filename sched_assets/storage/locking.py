"""How concurrent writers share the warehouse: a file lock for a DuckDB file, retries for DuckLake.

DuckDB file: DuckDB lets one process open a file for writing, and while it does no other process can
open it at all. Instead of failing on DuckDB's lock, every process (and thread) takes an
`fcntl.flock` on a sidecar `<database>.lock` first and waits its turn: exclusive for writers, shared
for readers (DuckDB allows many read-only processes at once).

DuckLake: no lock; any number of processes write at once and DuckLake checks at COMMIT whether another
transaction changed the same table since this one began ("Transaction conflict - ... another
transaction has ..."); a SQLite catalog also refuses concurrent commits ("database is locked").
`retry_conflicts` re-runs such a transaction from the start, a bounded number of times with growing,
jittered waits, and says how many retries it took.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from .errors import WarehouseError, WarehouseLockedError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY = 0.02
_MAX_DELAY = 0.5


def lock_path_for(database: Path) -> Path:
    """The sidecar lock file of a database file."""
    return database.with_name(database.name + ".lock")


def backoff_delays(first: float = _FIRST_DELAY, cap: float = _MAX_DELAY) -> Iterator[float]:
    """Growing, jittered sleeps, so waiting processes neither spin nor wake in lockstep."""
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * 1.5, cap)


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


@contextlib.contextmanager
def file_lock(lock_path: Path, database: Path, *, shared: bool, timeout: float) -> Iterator[None]:
    """Hold an exclusive (or shared) flock on `lock_path`, polling with backoff up to `timeout` s.

    A lock file that cannot be created in a read-only location is skipped for shared (read-only)
    use: nobody can write there, so there is nothing to serialize against.
    """
    try:
        fd = _open_lock_file(lock_path)
    except OSError as exc:
        if shared:
            yield
            return
        raise WarehouseError(
            f"cannot create/write DuckDB database at {database}: cannot create lock file {lock_path}: "
            f"{exc.strerror or exc}; set SCHED_DUCKDB_PATH to a writable file"
        ) from exc
    try:
        _acquire(fd, lock_path, database, shared=shared, timeout=timeout)
        if not shared:
            _record_holder(fd)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, lock_path: Path, database: Path, *, shared: bool, timeout: float) -> None:
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    delays = backoff_delays()
    waited = False
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if not waited:
                logger.info("waiting up to %gs for another process to release %s", timeout, database)
                waited = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(_timeout_message(fd, lock_path, database, timeout)) from None
            time.sleep(min(next(delays), remaining))


def _record_holder(fd: int) -> None:
    """Write who holds the lock into the lock file, so a timed-out waiter can name the culprit."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} since {stamp}\n".encode(), 0)


def _timeout_message(fd: int, lock_path: Path, database: Path, timeout: float) -> str:
    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
    holder_note = f" (last writer: {holder})" if holder else ""
    return (
        f"timed out after {timeout:g}s waiting for DuckDB database {database}: another process "
        f"holds {lock_path}{holder_note}. Wait for the other run to finish (or stop it), or raise "
        "lock_timeout_seconds."
    )


# -- DuckLake: re-running a transaction that lost a commit race ----------------------------------------

# What says that a transaction lost to another writer and may simply run again from the start.
_RETRYABLE = {
    "Transaction conflict": "write-write conflict",  # DuckLake, checked at COMMIT
    "database is locked": "catalog locked",  # SQLite catalog: another process was committing
    "database table is locked": "catalog locked",
    # SQLite catalog: the commit read the catalog while another process's commit was landing.
    "Failed to load DuckLake": "catalog changed during the commit",
    # SQLite catalog: a transaction that began as another writer's commit created the table has the
    # table in its DuckLake snapshot, but its SQLite connection (where sqlite_scanner looks table names
    # up; rows come through fresh connections) does not see the table's inlined-data table yet. A re-run
    # sees both. Rare: threads or processes creating one table at once.
    "Failed to read inlined data from DuckLake: Table with name ducklake_inlined_data_": "catalog changed "
    "as the transaction began",
    "could not serialize access": "serialization failure",  # Postgres catalog
    "deadlock detected": "deadlock",
}


class WarehouseConflictError(WarehouseLockedError):
    """A transaction kept conflicting with other writers for all its attempts."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a conflicting transaction runs (in all) and how long to wait between runs."""

    attempts: int = 10
    first_delay: float = 0.1  # seconds; grows 1.5x per retry up to max_delay, jittered down to half
    max_delay: float = 3.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")


@dataclass(frozen=True)
class Retried(Generic[T]):
    """What a function returned, and how many times it had to be re-run after a conflict."""

    value: T
    retries: int


def conflict_reason(exc: BaseException) -> str | None:
    """Why `exc` is a lost commit race worth re-running (e.g. "write-write conflict"), else None."""
    text = str(exc)
    return next((reason for marker, reason in _RETRYABLE.items() if marker in text), None)


def retry_conflicts(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    what: str = "transaction",
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> Retried[T]:
    """Run `fn`; while it fails with a conflict (`conflict_reason`), wait and run it again from the start.

    `fn` must be one whole transaction that is safe to re-run (it rolled back on the error: nothing
    of it is left). Other errors propagate at once. After `policy.attempts` runs that all conflicted,
    raises `WarehouseConflictError`. `on_retry(retry_number, error)` is called before each wait.
    """
    policy = policy or RetryPolicy()
    delays = backoff_delays(first=policy.first_delay, cap=policy.max_delay)
    for attempt in range(1, policy.attempts + 1):
        try:
            return Retried(fn(), retries=attempt - 1)
        except Exception as exc:
            reason = conflict_reason(exc)
            if reason is None:
                raise
            if attempt == policy.attempts:
                raise WarehouseConflictError(
                    f"{what}: gave up after {policy.attempts} attempts, each lost to another writer "
                    f"({reason}); nothing of it was written. Last error: {exc}. Retry the run, raise "
                    "commit_attempts, or have fewer writers change the same table at once."
                ) from exc
            logger.info(
                "%s: %s, running it again (retry %d of %d)", what, reason, attempt, policy.attempts - 1
            )
            if on_retry is not None:
                on_retry(attempt, exc)
            time.sleep(next(delays))
    raise AssertionError("unreachable")  # the loop returns or raises
