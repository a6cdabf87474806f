"""The per-key lock: never two syncs of one API key at once, across threads, processes and machines.

File lock (an instance on local storage) and Postgres advisory lock (an instance on Postgres, from a
real throwaway cluster): a second holder of the same key waits and gives up with `KeyLockTimeout`,
other keys never wait, the lock goes away after the block, after an exception and with a holder that
was SIGKILLed, and neither the lock file's name nor the advisory lock id nor anything the server sees
carries the key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sched_assets.accounts.lock import (
    KeyLockLost,
    KeyLocks,
    KeyLockTimeout,
    instance_postgres_url,
    key_lock,
    lock_id,
)
from sched_assets_tests.postgres import PostgresCluster

REPO = Path(__file__).resolve().parents[1]
DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"

KEY = "test-key-not-a-secret-acme"
OTHER_KEY = "test-key-not-a-secret-other"
POLL = 0.5  # the lock's poll interval (lock._POLL_SECONDS): a timeout is observed within one poll
SLACK = 3.0  # generous upper bound on top of timeout + poll on a loaded 2-core machine

# A child process that takes the lock, prints "held <seconds waited>", and keeps it until its stdin
# closes (a clean release) or it is killed.
HOLDER = """
import json, sys
from pathlib import Path
from sched_assets.accounts.lock import key_lock
args = json.loads(sys.argv[1])
with key_lock(
    args["key"], args["account"], postgres_url=args["postgres_url"], lock_dir=Path(args["lock_dir"]),
    timeout=args["timeout"],
) as held:
    waited = held.waited
    print(f"held {waited:.3f}", flush=True)
    sys.stdin.read()
print("released", flush=True)
"""


@dataclass
class Holder:
    process: subprocess.Popen[str]

    def wait_held(self, timeout: float = 60.0) -> float:
        """Block until the child holds the lock; return how long it waited for it."""
        line = _readline(self.process, timeout)
        assert line.startswith("held "), f"holder said {line!r}; stderr: {self._stderr()}"
        return float(line.split()[1])

    def release(self) -> None:
        """Let the child leave its block normally and exit."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0, self._stderr()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        assert self.process.returncode == -signal.SIGKILL

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(running)"
        return self.process.stderr.read()


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result:
        raise AssertionError(f"holder printed nothing within {timeout} s")
    return result[0].strip()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.process.kill()
            holder.process.wait(timeout=30)


def start_holder(
    holders: list[Holder],
    *,
    key: str = KEY,
    account: str = "acme",
    postgres_url: str | None = None,
    lock_dir: Path,
    timeout: float = 30.0,
) -> Holder:
    args = {
        "key": key,
        "account": account,
        "postgres_url": postgres_url,
        "lock_dir": str(lock_dir),
        "timeout": timeout,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(args)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    holder = Holder(process)
    holders.append(holder)
    return holder


def assert_times_out(
    *, key: str = KEY, account: str = "acme", postgres_url: str | None, lock_dir: Path, timeout: float
) -> float:
    """Try the lock that someone else holds: `KeyLockTimeout` after about `timeout` seconds."""
    started = time.monotonic()
    with (
        pytest.raises(KeyLockTimeout) as info,
        key_lock(key, account, postgres_url=postgres_url, lock_dir=lock_dir, timeout=timeout),
    ):
        pytest.fail("got a lock that another holder has")
    elapsed = time.monotonic() - started
    assert timeout <= elapsed < timeout + POLL + SLACK
    message = str(info.value)
    assert f"account {account!r}" in message
    assert f"{timeout:g} s" in message
    assert key not in message
    return elapsed


def acquire_now(key: str = KEY, *, postgres_url: str | None, lock_dir: Path, account: str = "acme") -> float:
    """Take and release the lock with no waiting allowed; return the seconds waited (about 0)."""
    with key_lock(key, account, postgres_url=postgres_url, lock_dir=lock_dir, timeout=0) as held:
        return held.waited


# ---- lock_id and instance_postgres_url -----------------------------------------------------------


def test_lock_id_is_a_stable_signed_bigint_per_key() -> None:
    ids = {lock_id(key) for key in (KEY, OTHER_KEY, "", "a", "b", KEY + " ")}

    assert len(ids) == 6
    assert lock_id(KEY) == lock_id(KEY)
    assert all(-(2**63) <= value < 2**63 for value in ids)
    assert str(lock_id(KEY)) not in KEY
    # Pinned: every process and machine (and every version of the code) must agree on a key's id.
    import hashlib

    digest = hashlib.blake2b(KEY.encode(), digest_size=8, person=b"sched-key-lock").digest()
    assert lock_id(KEY) == int.from_bytes(digest, "big", signed=True)


def test_instance_postgres_url_of_objects_without_postgres() -> None:
    assert instance_postgres_url(object()) is None
    assert instance_postgres_url(SimpleNamespace(run_storage=object())) is None
    assert instance_postgres_url(SimpleNamespace(run_storage=SimpleNamespace(postgres_url=""))) is None
    url = "postgresql+psycopg2://u@h:5432/d"
    assert instance_postgres_url(SimpleNamespace(run_storage=SimpleNamespace(postgres_url=url))) == url


def test_instance_postgres_url_of_a_local_dagster_instance_is_none(tmp_path: Path) -> None:
    import dagster as dg

    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        assert instance_postgres_url(instance) is None


# ---- file lock: threads in one process ----------------------------------------------------------


def test_file_lock_second_holder_times_out(tmp_path: Path) -> None:
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0) as held:
        waited = held.waited
        assert 0 <= waited < POLL
        assert_times_out(postgres_url=None, lock_dir=tmp_path, timeout=0.3)
        assert_times_out(postgres_url=None, lock_dir=tmp_path, timeout=0)


def test_file_lock_is_per_key_not_per_account(tmp_path: Path) -> None:
    # Two accounts that share a key share its rate limit: they must not sync at once either.
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
        assert_times_out(account="acme-eu", postgres_url=None, lock_dir=tmp_path, timeout=0.2)


def test_file_lock_different_keys_do_not_block_each_other(tmp_path: Path) -> None:
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
        assert acquire_now(OTHER_KEY, account="globex", postgres_url=None, lock_dir=tmp_path) < POLL


def test_file_lock_waiter_gets_it_when_the_holder_leaves(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        threading.Timer(1.0, release.set).start()
        started = time.monotonic()
        with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=20) as held:
            waited = held.waited
            elapsed = time.monotonic() - started
            assert release.is_set()
    finally:
        release.set()
        thread.join(30)
    assert 0.9 <= waited <= elapsed < 1.0 + POLL + SLACK


def test_file_lock_released_after_the_block_and_after_an_exception(tmp_path: Path) -> None:
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
        pass
    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL

    with (
        pytest.raises(RuntimeError, match="sync failed"),
        key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0),
    ):
        raise RuntimeError("sync failed")
    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL

    # A timeout does not leave anything held either.
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
        assert_times_out(postgres_url=None, lock_dir=tmp_path, timeout=0)
    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL


def test_file_lock_creates_the_lock_dir_and_names_files_without_the_key(tmp_path: Path) -> None:
    lock_dir = tmp_path / "storage" / "sched_key_locks"

    with (
        key_lock(KEY, "acme", postgres_url=None, lock_dir=lock_dir, timeout=0),
        key_lock(OTHER_KEY, "globex", postgres_url=None, lock_dir=lock_dir, timeout=0),
    ):
        names = sorted(path.name for path in lock_dir.iterdir())

    assert len(names) == 2
    expected = sorted(f"key-{lock_id(key) & (2**64 - 1):016x}.lock" for key in (KEY, OTHER_KEY))
    assert names == expected
    for path in lock_dir.iterdir():
        assert KEY not in path.name and OTHER_KEY not in path.name
        assert "acme" not in path.name  # named by the key's hash only
        assert path.read_bytes() == b""  # the file holds nothing, least of all the key
        assert path.stat().st_mode & 0o077 == 0


# ---- file lock: processes ------------------------------------------------------------------------


def test_file_lock_held_by_another_process(tmp_path: Path, holders: list[Holder]) -> None:
    holder = start_holder(holders, lock_dir=tmp_path)
    holder.wait_held()

    assert_times_out(postgres_url=None, lock_dir=tmp_path, timeout=0.5)
    assert acquire_now(OTHER_KEY, postgres_url=None, lock_dir=tmp_path) < POLL

    holder.release()
    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL


def test_file_lock_second_process_waits_then_gets_it(tmp_path: Path, holders: list[Holder]) -> None:
    with key_lock(KEY, "acme", postgres_url=None, lock_dir=tmp_path, timeout=0):
        waiter = start_holder(holders, lock_dir=tmp_path, timeout=60)
        time.sleep(1.5)  # the child is waiting (importing takes well under this, but it need not)
        assert waiter.process.poll() is None
    waited = waiter.wait_held()
    assert waited > 0
    waiter.release()


def test_file_lock_of_a_sigkilled_holder_is_released(tmp_path: Path, holders: list[Holder]) -> None:
    holder = start_holder(holders, lock_dir=tmp_path)
    holder.wait_held()
    assert_times_out(postgres_url=None, lock_dir=tmp_path, timeout=0.2)

    holder.kill()

    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL


# ---- Postgres advisory lock ----------------------------------------------------------------------


def advisory_locks(cluster: PostgresCluster, dbname: str) -> list[tuple[int, int, int, bool, int]]:
    """(classid, objid, objsubid, granted, pid) of every advisory lock in `dbname`."""
    connection = cluster.connect(dbname)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.classid::bigint, l.objid::bigint, l.objsubid, l.granted, l.pid FROM pg_locks l "
                "JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = %s",
                (dbname,),
            )
            return cursor.fetchall()
    finally:
        connection.close()


def server_text(cluster: PostgresCluster) -> str:
    """Everything the server shows about its sessions, as text (queries, application names, ...)."""
    connection = cluster.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT row_to_json(a)::text FROM pg_stat_activity a")
            activity = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("SELECT row_to_json(l)::text FROM pg_locks l")
            locks = "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.close()
    return activity + "\n" + locks


def sessions(cluster: PostgresCluster, dbname: str) -> int:
    connection = cluster.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,))
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_postgres_url_is_the_sqlalchemy_psycopg2_url(postgres: PostgresCluster, postgres_db: str) -> None:
    url = postgres.url(postgres_db)

    assert url.startswith("postgresql+psycopg2://")


def test_advisory_lock_second_holder_times_out_and_other_keys_pass(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    url = postgres.url(postgres_db)
    lock_dir = tmp_path / "unused"

    with key_lock(KEY, "acme", postgres_url=url, lock_dir=lock_dir, timeout=0) as held:
        waited = held.waited
        assert 0 <= waited < POLL
        assert_times_out(postgres_url=url, lock_dir=lock_dir, timeout=0.6)
        assert_times_out(account="acme-eu", postgres_url=url, lock_dir=lock_dir, timeout=0)
        assert acquire_now(OTHER_KEY, account="globex", postgres_url=url, lock_dir=lock_dir) < POLL

    assert acquire_now(postgres_url=url, lock_dir=lock_dir) < POLL
    assert not lock_dir.exists(), "with a Postgres URL no lock file is made"


def test_advisory_lock_released_after_the_block_and_after_an_exception(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    url = postgres.url(postgres_db)
    before = sessions(postgres, postgres_db)

    with key_lock(KEY, "acme", postgres_url=url, lock_dir=tmp_path, timeout=0):
        assert len(advisory_locks(postgres, postgres_db)) == 1
    assert advisory_locks(postgres, postgres_db) == []

    with (
        pytest.raises(RuntimeError, match="sync failed"),
        key_lock(KEY, "acme", postgres_url=url, lock_dir=tmp_path, timeout=0),
    ):
        raise RuntimeError("sync failed")
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL

    with key_lock(KEY, "acme", postgres_url=url, lock_dir=tmp_path, timeout=0):
        assert_times_out(postgres_url=url, lock_dir=tmp_path, timeout=0)
    assert advisory_locks(postgres, postgres_db) == []
    # Every connection the lock opened (holders and timed-out waiters alike) is closed.
    assert wait_until(lambda: sessions(postgres, postgres_db) == before)


def test_advisory_lock_id_is_the_keys_hash_and_the_server_never_sees_the_key(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    url = postgres.url(postgres_db)

    with key_lock(KEY, "acme", postgres_url=url, lock_dir=tmp_path, timeout=0):
        locks = advisory_locks(postgres, postgres_db)
        text = server_text(postgres)

    assert len(locks) == 1
    classid, objid, objsubid, granted, _pid = locks[0]
    # A bigint advisory lock shows as its high and low 32 bits, objsubid 1.
    assert granted and objsubid == 1
    assert (classid << 32) | objid == lock_id(KEY) & (2**64 - 1)
    assert KEY not in text
    assert "not-a-secret" not in text


def test_advisory_lock_held_by_another_process(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path, holders: list[Holder]
) -> None:
    url = postgres.url(postgres_db)
    holder = start_holder(holders, postgres_url=url, lock_dir=tmp_path)
    holder.wait_held()
    assert not any(tmp_path.iterdir()), "no lock file with a Postgres URL"

    assert_times_out(postgres_url=url, lock_dir=tmp_path, timeout=0.5)
    assert acquire_now(OTHER_KEY, postgres_url=url, lock_dir=tmp_path) < POLL
    # The file lock is another lock: a holder on Postgres does not show there (and vice versa), so
    # every process of one deployment must agree on the instance (they do: they share dagster.yaml).
    assert acquire_now(postgres_url=None, lock_dir=tmp_path) < POLL

    holder.release()
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL


def test_advisory_lock_second_process_waits_then_gets_it(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path, holders: list[Holder]
) -> None:
    url = postgres.url(postgres_db)
    first = start_holder(holders, postgres_url=url, lock_dir=tmp_path)
    first.wait_held()
    second = start_holder(holders, postgres_url=url, lock_dir=tmp_path, timeout=60)
    time.sleep(2.0)
    assert second.process.poll() is None
    assert wait_until(lambda: len(advisory_locks(postgres, postgres_db)) == 1)

    first.release()

    assert second.wait_held() > 0
    second.release()
    assert advisory_locks(postgres, postgres_db) == []


def test_advisory_lock_of_a_sigkilled_holder_is_released(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path, holders: list[Holder]
) -> None:
    url = postgres.url(postgres_db)
    holder = start_holder(holders, postgres_url=url, lock_dir=tmp_path)
    holder.wait_held()
    assert_times_out(postgres_url=url, lock_dir=tmp_path, timeout=0.2)

    holder.kill()

    # The server ends the dead client's session, and with it the lock.
    assert wait_until(lambda: advisory_locks(postgres, postgres_db) == [], timeout=15)
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL


def test_advisory_lock_on_the_url_of_a_dagster_instance_from_deploy_yaml(
    postgres: PostgresCluster,
    postgres_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    holders: list[Holder],
) -> None:
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DEPLOY_YAML.read_text())
    for name, value in {
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": postgres.user,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": postgres_db,
    }.items():
        monkeypatch.setenv(name, value)
    assert yaml.safe_load(DEPLOY_YAML.read_text())["storage"]["custom"]["config"]["postgres_db"]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        url = instance_postgres_url(instance)

    assert url is not None
    assert url.startswith("postgresql+psycopg2://")
    assert f":{postgres.port}/{postgres_db}" in url
    # The run storage's URL is what a run uses: it locks, and a process on it sees the lock.
    holder = start_holder(holders, postgres_url=url, lock_dir=tmp_path)
    holder.wait_held()
    assert_times_out(postgres_url=postgres.url(postgres_db), lock_dir=tmp_path, timeout=0.2)
    holder.release()
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL


def test_a_postgres_restart_ends_the_lock_and_its_holder_learns_it_before_writing(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    # A session lock lives as long as its connection: a server restart drops both. The holder checks
    # the lock right before it writes, and learns it there; leaving the block then raises nothing.
    url = postgres.url(postgres_db)
    with key_lock(KEY, "acme", postgres_url=url, lock_dir=tmp_path, timeout=0) as held:
        held.check()  # still ours
        postgres.restart()
        with pytest.raises(KeyLockLost, match="lost during the sync"):
            held.check()
        assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL  # the key is free again

    assert postgres.running
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL


def test_a_runs_key_locks_share_one_postgres_session(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    # One connection per run, not per account; the same key twice in one run still waits (advisory
    # locks would re-enter within a session); closing the run's locks releases every one of them.
    url = postgres.url(postgres_db)
    before = sessions(postgres, postgres_db)
    locks = KeyLocks(postgres_url=url, lock_dir=tmp_path, timeout=0.6)
    with locks:
        with locks.hold(KEY, "acme") as acme, locks.hold(OTHER_KEY, "globex") as globex:
            assert acme.waited == globex.waited == 0
            assert sessions(postgres, postgres_db) == before + 1
            assert len(advisory_locks(postgres, postgres_db)) == 2
            started = time.monotonic()
            with pytest.raises(KeyLockTimeout), locks.hold(KEY, "acme-eu"):
                pytest.fail("one run held one key twice")
            assert time.monotonic() - started >= 0.6
            assert_times_out(postgres_url=url, lock_dir=tmp_path, timeout=0)  # and no other run gets it
            acme.check()
            globex.check()
        assert advisory_locks(postgres, postgres_db) == []  # released as each account finished
        held = locks.hold(KEY, "acme")
        held.__enter__()  # left open: closing the locks must release it
    assert advisory_locks(postgres, postgres_db) == []
    assert wait_until(lambda: sessions(postgres, postgres_db) == before)


def test_a_postgres_restart_loses_every_lock_of_the_run(
    postgres: PostgresCluster, postgres_db: str, tmp_path: Path
) -> None:
    url = postgres.url(postgres_db)
    with (
        KeyLocks(postgres_url=url, lock_dir=tmp_path, timeout=0) as locks,
        locks.hold(KEY, "acme") as acme,
        locks.hold(OTHER_KEY, "globex") as globex,
    ):
        postgres.restart()
        for held in (acme, globex):
            with pytest.raises(KeyLockLost):
                held.check()
    assert acquire_now(postgres_url=url, lock_dir=tmp_path) < POLL
