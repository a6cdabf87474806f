"""A private, throwaway PostgreSQL cluster for tests, started from the Debian server binaries.

Tests never mock Postgres: they get a real server of their own, on a free TCP port bound to
127.0.0.1, with its data directory and Unix socket in a temporary directory::

    cluster = PostgresCluster()
    cluster.start()                      # initdb -A trust (first time) + pg_ctl -w start, 1-2 s
    cluster.create_database("dagster")
    url = cluster.url("dagster")         # postgresql+psycopg2://postgres@127.0.0.1:PORT/dagster
    cluster.restart()                    # same port, same data (a "Postgres restart" mid-test)
    cluster.close()                      # stop it and remove the directory

The binaries come from `/usr/lib/postgresql/<newest>/bin` (Debian's `postgresql` package; `.ci/run`
installs it), else `pg_config --bindir`, else `initdb` on PATH. As root, PostgreSQL refuses to run, so
the binaries run as the `postgres` user (`runuser -u postgres --`) and the directory is chowned to it.

Nothing is left behind, even when a test run dies: besides `close()` and an `atexit` hook, each
cluster has a tiny watchdog process that waits for the test process to go away (its stdin pipe
closes, which also happens on SIGKILL) and then kills the postmaster and its backends and removes
the directory. Plain standard library plus psycopg2 (for `create_database`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sched_assets_tests.processes import free_port

SUPERUSER = "postgres"  # initdb -U: the same superuser name whoever runs the tests
HOST = "127.0.0.1"
START_TIMEOUT = 60  # seconds for `pg_ctl -w start` (1-2 s here, initdb included)

# Fast and private: no durability needed for tests (a clean restart keeps the data all the same).
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # daemon, code servers and run workers each hold a small pool
}

# Runs in the watchdog process: wait until the test process is gone (stdin reaches EOF), then kill
# the postmaster and its children (each backend is a process group of its own: PostgreSQL calls
# setsid() in every child, so one killpg of the postmaster's group does not reach them) and remove
# the directory.
_WATCHDOG = """
import os, shutil, signal, sys
root, pidfile = sys.argv[1], sys.argv[2]
sys.stdin.read()
try:
    pid = int(open(pidfile).readline())
except (OSError, ValueError):
    pid = None
if pid:
    children = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    for target in [pid, *children]:
        try:
            os.killpg(target, signal.SIGKILL)
        except OSError:
            pass
shutil.rmtree(root, ignore_errors=True)
"""


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (`initdb`, `pg_ctl`) are not installed."""


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); "9.6" -> (9, 6); non-numeric names sort first
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_bindir() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`, or None when they are not installed."""
    candidates = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").is_file()),
        key=_version_key,
    )
    if candidates:
        return candidates[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            output = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if output and (Path(output) / "initdb").is_file():
                return Path(output)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _reachable_temp_dir() -> str:
    """The system temp dir if every user can traverse it (the server runs as `postgres`), else /tmp."""
    directory = Path(tempfile.gettempdir()).resolve()
    if all(os.stat(path).st_mode & 0o001 for path in [directory, *directory.parents]):
        return str(directory)
    return "/tmp"


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (Linux /proc; empty elsewhere)."""
    children = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: ppid, after "(comm)"
                    children.append(int(entry))
    return children


_live: set[PostgresCluster] = set()


@atexit.register
def _close_all() -> None:
    for cluster in list(_live):
        cluster.close()


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory: `start()`, `stop()`, `restart()`, `close()`."""

    def __init__(self, bindir: Path | None = None, *, port: int | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin, "
                "via pg_config or on PATH: install the Debian `postgresql` package "
                "(apt-get install -y --no-install-recommends postgresql; .ci/run does this)"
            )
        self.bindir = found
        self.host = HOST
        self.port = port or free_port(HOST)
        self._port_fixed = port is not None  # else a port taken meanwhile may be swapped on first start
        self._started_once = False
        self.user = SUPERUSER
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        if self._as_postgres:
            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root needs a `{SUPERUSER}` user to run PostgreSQL as "
                    "(the Debian `postgresql` package creates it)"
                ) from None
            if shutil.which("runuser") is None:
                raise PostgresUnavailable(
                    f"running as root needs `runuser` to run PostgreSQL as `{SUPERUSER}`"
                )
        self.directory = Path(tempfile.mkdtemp(prefix="sched-pg-", dir=_reachable_temp_dir()))
        self.data_dir = self.directory / "data"
        self.socket_dir = self.directory / "socket"
        self.log_file = self.directory / "server.log"
        self.socket_dir.mkdir()
        if self._as_postgres:
            for path in (self.directory, self.socket_dir):
                shutil.chown(path, user=SUPERUSER)
        self._initialized = False
        self._closed = False
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.directory), str(self.data_dir / "postmaster.pid")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the test's process group must not reach it
        )
        _live.add(self)

    # ---- connection details ------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq key=value connection string (psycopg2, DuckDB's postgres extension, DuckLake)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres", scheme: str = "postgresql+psycopg2") -> str:
        """An SQLAlchemy URL (trust authentication: no password)."""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):  # -> psycopg2 connection
        import psycopg2

        return psycopg2.connect(self.dsn(dbname), connect_timeout=10)

    def create_database(self, name: str) -> str:
        """`CREATE DATABASE name` (owned by the superuser); returns the name."""
        from psycopg2 import sql

        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()
        return name

    def drop_database(self, name: str) -> None:
        """`DROP DATABASE IF EXISTS name WITH (FORCE)`: also ends the sessions still connected to it."""
        from psycopg2 import sql

        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        finally:
            connection.close()

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid (from postmaster.pid), or None when it is not running."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # alive, owned by another user
            pass
        return pid

    @property
    def running(self) -> bool:
        return self.postmaster_pid is not None

    def start(self) -> None:
        """Initialize the cluster on first use, then `pg_ctl -w start` on `self.port`."""
        if self._closed:
            raise RuntimeError("this PostgresCluster was closed")
        if self.running:
            return
        if not self._initialized:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    self.user,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            self._initialized = True
        for attempt in range(3):
            options = [f"-p {self.port}", f"-k {self.socket_dir}"]
            options += [f"-c {name}={value}" for name, value in SERVER_SETTINGS.items()]
            command = ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w"]
            command += ["-t", str(START_TIMEOUT), "-o", " ".join(options), "start"]
            try:
                self._run(command)
            except RuntimeError as error:
                # Another process took the free port between free_port() and the bind: pick another.
                port_taken = "could not bind" in str(error) or "could not create listen socket" in str(error)
                if self._port_fixed or self._started_once or not port_taken or attempt == 2:
                    raise
                self.port = free_port(HOST)
            else:
                self._started_once = True
                return

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl -m MODE -w stop` ("smart", "fast" or "immediate", a crash-like stop).

        Falls back to killing the postmaster's process group when pg_ctl cannot stop it.
        """
        if not self.running:
            return
        try:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop"])
        except (RuntimeError, subprocess.TimeoutExpired):
            self.kill()

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port, keeping the data."""
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster's process group and each of its children (a crash, or a last resort).

        Every PostgreSQL child calls setsid(), so the backends are not in the postmaster's group; they
        are found by their parent pid.
        """
        pid = self.postmaster_pid
        if pid is None:
            return
        for target in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(target, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.postmaster_pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the server (killing it if need be) and remove the directory; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop("immediate")
        finally:
            self.kill()
            shutil.rmtree(self.directory, ignore_errors=True)
            with contextlib.suppress(OSError):
                if self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()  # EOF: the watchdog finds nothing left and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=10)
            _live.discard(self)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log (for error messages)."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresCluster({self.host}:{self.port}, {self.directory})"

    # ---- helpers -----------------------------------------------------------------------------

    def _run(self, command: Sequence[str]) -> None:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self._as_postgres:
            argv = ["runuser", "-u", SUPERUSER, "--", *argv]
        result = subprocess.run(
            argv,
            cwd=self.directory,  # initdb/pg_ctl complain when they cannot stat the cwd
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 30,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                f"\n--- server log ---\n{self.log_tail()}"
            )
