"""A cross-process lock on `<database>.lock`, so only one process at a time has the DuckDB file open.

DuckDB lets one process open a file for writing, and while it does no other process can open it at
all. Instead of failing on DuckDB's lock, every process (and thread) takes an `fcntl.flock` on a
sidecar file first and waits its turn: exclusive for writers, shared for readers (DuckDB allows
many read-only processes at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import WarehouseError, WarehouseLockedError

logger = logging.getLogger(__name__)

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
