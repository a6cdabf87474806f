"""Never two syncs of one API key at once, whoever launched them: a lock keyed by the key's hash.

On a Postgres-backed Dagster instance the lock is a Postgres advisory lock, so it holds across every
machine that shares the instance, and the server drops it when the holder's connection ends (a killed
run never leaves it behind). Otherwise it is a file lock in the instance's storage directory (one
machine). The key's value is never stored or logged: only a 64-bit keyed hash of it names the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_PERSON = b"sched-key-lock"  # domain separation: this hash means nothing anywhere else
_POLL_SECONDS = 0.5


class KeyLockTimeout(TimeoutError):
    """Another run held the account's key for longer than the wait allowed."""


class KeyLockLost(RuntimeError):
    """The lock went away while held (the Postgres server restarted): another run may hold it now."""


@dataclass
class HeldLock:
    """A key lock while it is held: how long it took, and a check that it is still ours."""

    account: str
    waited: float  # 0.0 when the lock was free at once; else seconds spent waiting for another holder
    _alive: Callable[[], bool] = field(repr=False, default=lambda: True)

    def check(self) -> None:
        """Raise `KeyLockLost` unless the lock is still held (call it right before writing)."""
        if not self._alive():
            raise KeyLockLost(
                f"account {self.account!r}: its key lock was lost during the sync (the Postgres server of "
                "the Dagster instance restarted?), so another run may be syncing it; nothing of it was "
                "written. It runs again with the next schedule tick or backfill."
            )


def lock_id(api_key: str) -> int:
    """A signed 64-bit id for the key (Postgres advisory locks take a bigint)."""
    digest = hashlib.blake2b(api_key.encode(), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def key_lock(
    api_key: str, account: str, *, postgres_url: str | None, lock_dir: Path, timeout: float
) -> Iterator[float]:
    """Hold the key's lock for the block; yields the seconds waited. `KeyLockTimeout` after `timeout`."""
    if postgres_url:
        with _advisory_lock(lock_id(api_key), account, postgres_url, timeout) as waited:
            yield waited
    else:
        with _file_lock(
            lock_dir / f"key-{lock_id(api_key) & (2**64 - 1):016x}.lock", account, timeout
        ) as waited:
            yield waited


def _timeout(account: str, timeout: float) -> KeyLockTimeout:
    return KeyLockTimeout(
        f"account {account!r}: another run has been syncing the same API key for over {timeout:g} s, so "
        "this sync did not start (two syncs of one key would share its rate limit and race on its rows). "
        "It runs again with the next schedule tick or backfill; raise account_lock_timeout_seconds to wait longer."
    )


@contextlib.contextmanager
def _advisory_lock(key: int, account: str, postgres_url: str, timeout: float) -> Iterator[HeldLock]:
    import psycopg2

    con = psycopg2.connect(_libpq_url(postgres_url))
    try:
        con.autocommit = True
        started = time.monotonic()
        with con.cursor() as cur:
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cur.fetchone()[0]:
                    break
                if time.monotonic() - started >= timeout:
                    raise _timeout(account, timeout)
                time.sleep(_POLL_SECONDS)
        yield HeldLock(account, _waited(started), lambda: _still_held(con, key))
        # A lost connection already released it.
        with contextlib.suppress(psycopg2.Error), con.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        con.close()  # also releases the lock if the block raised


def _still_held(con: object, key: int) -> bool:
    """Whether this session still holds the advisory lock (False once the connection is gone)."""
    import psycopg2

    try:
        with con.cursor() as cur:  # type: ignore[attr-defined]
            # A bigint advisory lock shows as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND objsubid = 1 AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            )
            return cur.fetchone()[0] > 0
    except psycopg2.Error:
        return False


@contextlib.contextmanager
def _file_lock(path: Path, account: str, timeout: float) -> Iterator[HeldLock]:
    import fcntl

    os.makedirs(path.parent, exist_ok=True)  # Path.mkdir(parents=True) races with other threads on 3.11
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= timeout:
                    raise _timeout(account, timeout) from None
                time.sleep(_POLL_SECONDS)
        yield HeldLock(account, _waited(started))  # a file lock lives as long as we do
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _waited(started: float) -> float:
    """Seconds since `started`, or 0.0 if the lock was taken at the first try (under one poll)."""
    waited = time.monotonic() - started
    return waited if waited >= _POLL_SECONDS else 0.0


def _libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg2://...` as the `postgresql://...` URI libpq reads."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


def instance_postgres_url(instance: object) -> str | None:
    """The Postgres URL of a Dagster instance's run storage, or None when it is not on Postgres."""
    storage = getattr(instance, "run_storage", None)
    url = getattr(storage, "postgres_url", None)
    return str(url) if url else None
