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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
) -> Iterator[HeldLock]:
    """Hold one key's lock for the block. `KeyLockTimeout` after `timeout` seconds of waiting."""
    locks = KeyLocks(postgres_url=postgres_url, lock_dir=lock_dir, timeout=timeout)
    with locks, locks.hold(api_key, account) as held:
        yield held


class KeyLocks:
    """The key locks of one run: on Postgres one session holds them all (one connection per run, not
    per account), else one lock file per key in `lock_dir`. Safe to use from the run's threads."""

    def __init__(self, *, postgres_url: str | None, lock_dir: Path, timeout: float) -> None:
        self.postgres_url, self.lock_dir, self.timeout = postgres_url, lock_dir, timeout
        self._mutex = threading.Lock()  # one statement at a time on the shared session
        self._con: Any = None
        self._held: set[int] = set()  # advisory locks re-enter within a session: refuse that here

    def __enter__(self) -> KeyLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the session, which releases every advisory lock it still holds."""
        with self._mutex:
            if self._con is not None:
                self._con.close()
                self._con = None

    @contextlib.contextmanager
    def hold(self, api_key: str, account: str) -> Iterator[HeldLock]:
        """Hold the key's lock for the block; `KeyLockTimeout` after the run's timeout."""
        key = lock_id(api_key)
        if not self.postgres_url:
            with _file_lock(
                self.lock_dir / f"key-{key & (2**64 - 1):016x}.lock", account, self.timeout
            ) as held:
                yield held
            return
        started = time.monotonic()
        while not self._try_advisory(key):
            if time.monotonic() - started >= self.timeout:
                raise _timeout(account, self.timeout)
            time.sleep(_POLL_SECONDS)
        try:
            yield HeldLock(account, _waited(started), self._session_alive)
        finally:
            self._release_advisory(key)

    def _try_advisory(self, key: int) -> bool:
        with self._mutex:
            if key in self._held:
                return False
            if self._con is None:
                import psycopg2

                self._con = psycopg2.connect(_libpq_url(str(self.postgres_url)))
                self._con.autocommit = True
            with self._con.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                got = bool(cur.fetchone()[0])
            if got:
                self._held.add(key)
            return got

    def _release_advisory(self, key: int) -> None:
        import psycopg2

        with self._mutex:
            self._held.discard(key)
            if self._con is not None:
                # A lost session already released it.
                with contextlib.suppress(psycopg2.Error), self._con.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _session_alive(self) -> bool:
        # Session-level advisory locks end only with the session (or an unlock, which only `hold`
        # does): while the session answers, every lock it took is still held.
        import psycopg2

        with self._mutex:
            try:
                with self._con.cursor() as cur:
                    cur.execute("SELECT 1")
                    return cur.fetchone() is not None
            except (psycopg2.Error, AttributeError):
                return False


def _timeout(account: str, timeout: float) -> KeyLockTimeout:
    return KeyLockTimeout(
        f"account {account!r}: another run has been syncing the same API key for over {timeout:g} s, so "
        "this sync did not start (two syncs of one key would share its rate limit and race on its rows). "
        "It runs again with the next schedule tick or backfill; raise account_lock_timeout_seconds to wait longer."
    )


@contextlib.contextmanager
def _file_lock(path: Path, account: str, timeout: float) -> Iterator[HeldLock]:
    import fcntl

    os.makedirs(path.parent, exist_ok=True)
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
