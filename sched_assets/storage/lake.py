"""Where the warehouse lives: a DuckDB file, or a DuckLake catalog (Postgres or SQLite) with Parquet data.

`SCHED_DUCKDB_PATH` is parsed once into a `WarehouseLocation`:

- a path: one DuckDB file, one writing process at a time (`locking.file_lock`);
- `ducklake:postgres:dbname=lake host=... port=... user=...`: a DuckLake catalog in Postgres, written by
  any number of processes on any number of machines;
- `ducklake:sqlite:PATH`: a DuckLake catalog in a SQLite file, for several processes on one machine.

A DuckLake warehouse is attached to an in-memory DuckDB as `lake` and made the default database
(`USE lake`), so the same SQL (`raw.bookings`, `CREATE SCHEMA`, `duckdb_columns()` of
`current_database()`, temporary tables, transactions) works on either kind. The `ducklake`,
`postgres_scanner` and `sqlite_scanner` extensions are loaded from the files of their PyPI wheels
(`duckdb-extension-*`, pinned in the lockfile), never installed or downloaded at run time: extension
auto-install and auto-load are off and the extension directory is a private empty folder, so a missing
wheel fails with a message that names it.

Attaching costs about 0.3 s (mostly checking the extensions' signatures), so each process keeps one
attached in-memory database per (location, data path, read-only, settings) and hands out a new
connection (`cursor()`) on it for every `connect`. A connection error discards it (`forget_lake`); a
forked child never uses its parent's.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import TableNotFoundError, WarehouseError
from .locking import backoff_delays
from .naming import quote_literal

if TYPE_CHECKING:
    import duckdb

DUCKLAKE_PREFIX = "ducklake:"
LAKE_ALIAS = "lake"  # the attached catalog's name, and the connection's default database
DATABASE_ENV = "SCHED_DUCKDB_PATH"
DATA_PATH_ENV = "SCHED_DUCKLAKE_DATA_PATH"
_REDACTED = "***"

# PyPI package (import name) of each extension we load; the file is
# <package>/extensions/<DuckDB version, e.g. v1.5.5>/<name>.duckdb_extension.
_EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "httpfs": "duckdb_extension_httpfs",
}
# Data paths with one of these schemes are object storage, read and written through httpfs.
_REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "r2", "http", "https")
_ATTACH_ATTEMPTS = 6
_CATALOG_CREATION_RACE = re.compile(r"duplicate key|already exists|database is locked")

# libpq keyword/value `password=...` (quoted or not) and the password of a URI's user info.
_PASSWORD_VALUE = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)


class WarehouseKind(StrEnum):
    """What `SCHED_DUCKDB_PATH` names."""

    FILE = "file"  # one DuckDB database file
    DUCKLAKE_POSTGRES = "ducklake-postgres"  # a DuckLake catalog in a Postgres database
    DUCKLAKE_SQLITE = "ducklake-sqlite"  # a DuckLake catalog in a SQLite file (one machine)


@dataclass(frozen=True)
class WarehouseLocation:
    """A parsed `SCHED_DUCKDB_PATH`. `str()` of it never shows a password (use it in messages)."""

    kind: WarehouseKind
    target: str  # the absolute file path, the Postgres connection string, or the absolute SQLite path

    @classmethod
    def parse(cls, value: str | os.PathLike[str] | WarehouseLocation) -> WarehouseLocation:
        """`ducklake:postgres:<libpq conninfo>`, `ducklake:sqlite:<path>`, or else a DuckDB file path."""
        if isinstance(value, WarehouseLocation):
            return value
        if isinstance(value, os.PathLike) or not value.startswith(DUCKLAKE_PREFIX):
            return cls(WarehouseKind.FILE, str(Path(value).expanduser().absolute()))
        catalog = value[len(DUCKLAKE_PREFIX) :]
        backend, _, rest = catalog.partition(":")
        rest = rest.strip()
        if backend == "postgres" and rest:
            return cls(WarehouseKind.DUCKLAKE_POSTGRES, rest)
        if backend == "sqlite" and rest:
            return cls(WarehouseKind.DUCKLAKE_SQLITE, str(Path(rest).expanduser().absolute()))
        shown = _redact_dsn(value)
        raise WarehouseError(
            f"{DATABASE_ENV}={shown!r} is not a DuckLake catalog this project can use: write "
            "'ducklake:postgres:dbname=NAME host=HOST port=PORT user=USER' (many machines) or "
            "'ducklake:sqlite:PATH' (one machine), or a plain DuckDB file path. (A DuckLake catalog in a "
            "DuckDB file cannot be shared by several processes.)"
        )

    @property
    def is_lake(self) -> bool:
        """Whether this is a DuckLake catalog (no file lock; many writers, conflicts retried)."""
        return self.kind is not WarehouseKind.FILE

    @property
    def file(self) -> Path | None:
        """The local file holding the database or the catalog (None for a Postgres catalog)."""
        return None if self.kind is WarehouseKind.DUCKLAKE_POSTGRES else Path(self.target)

    @property
    def attach_uri(self) -> str:
        """What `ATTACH` takes: `ducklake:postgres:...` (password included: never show it)."""
        if self.kind is WarehouseKind.DUCKLAKE_POSTGRES:
            return f"{DUCKLAKE_PREFIX}postgres:{self.target}"
        if self.kind is WarehouseKind.DUCKLAKE_SQLITE:
            return f"{DUCKLAKE_PREFIX}sqlite:{self.target}"
        return self.target

    def redact(self, text: str) -> str:
        """`text` with this location's password (if any) replaced by `***`."""
        if self.kind is not WarehouseKind.DUCKLAKE_POSTGRES:
            return text
        for secret in _passwords(self.target):
            text = text.replace(secret, _REDACTED)
        return _redact_dsn(text)

    def __str__(self) -> str:
        return self.redact(self.attach_uri)


def _redact_dsn(text: str) -> str:
    text = _PASSWORD_VALUE.sub(lambda m: m.group(1) + _REDACTED, text)
    return _URI_PASSWORD.sub(lambda m: m.group(1) + _REDACTED + m.group(3), text)


def _passwords(dsn: str) -> list[str]:
    """The password values in a libpq connection string, raw and unquoted (longest first)."""
    found: set[str] = set()
    for match in _PASSWORD_VALUE.finditer(dsn):
        raw = match.group(2)
        found.add(raw)
        if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
            found.add(re.sub(r"\\(.)", r"\1", raw[1:-1]))
    for match in _URI_PASSWORD.finditer(dsn):
        found.add(match.group(2))
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def is_remote(data_path: str) -> bool:
    """Whether a DuckLake data path is object storage (`s3://...`) rather than a local folder."""
    scheme, sep, _ = data_path.partition("://")
    return bool(sep) and scheme.lower() in _REMOTE_SCHEMES


def normalized_data_path(data_path: str | os.PathLike[str] | None) -> str:
    """The DuckLake data path as given to `ATTACH`: a local folder made absolute, or an object-storage URL.

    Raises `WarehouseError` naming SCHED_DUCKLAKE_DATA_PATH when there is none.
    """
    text = str(data_path).strip() if data_path is not None else ""
    if not text:
        raise WarehouseError(
            f"a DuckLake warehouse needs a folder for its data files: set {DATA_PATH_ENV} (e.g. "
            "data/lake, or s3://bucket/prefix in production), the same for every process that uses it"
        )
    return text if is_remote(text) else str(Path(text).expanduser().absolute())


# -- extensions from the installed wheels -----------------------------------------------------------


def extension_file(name: str, duckdb_version: str) -> Path:
    """The extension's file inside its installed `duckdb-extension-*` wheel, for this DuckDB version."""
    package = _EXTENSION_PACKAGES[name]
    pip_name = package.replace("_", "-")
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise WarehouseError(
            f"the DuckDB extension {name!r} is not installed: add `{pip_name}=={duckdb_version.lstrip('v')}` "
            "to the project's dependencies (extensions are loaded from their PyPI wheels, never downloaded)"
        )
    path = Path(locations[0]) / "extensions" / duckdb_version / f"{name}.duckdb_extension"
    if not path.is_file():
        builds = sorted(p.name for p in (Path(locations[0]) / "extensions").glob("*"))
        raise WarehouseError(
            f"{pip_name} has no build of {name!r} for DuckDB {duckdb_version} (it has {builds or 'none'}): "
            f"pin {pip_name} to the same version as duckdb"
        )
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """`LOAD` an extension from its wheel's file (signed, so DuckDB checks it; nothing is downloaded)."""
    [(version,)] = con.execute("SELECT library_version FROM pragma_version()").fetchall()
    con.execute(f"LOAD {quote_literal(str(extension_file(name, str(version))))}")


# -- one attached lake per process and settings -----------------------------------------------------


@dataclass(frozen=True)
class LakeKey:
    """Everything that makes two attached lakes different (the process cache's key)."""

    location: WarehouseLocation
    data_path: str
    read_only: bool
    settings: tuple[tuple[str, str], ...]  # DuckDB settings of the in-memory database, sorted


class _Lake:
    """An in-memory DuckDB with the catalog attached as `lake`; `connection()` gives a new cursor on it."""

    def __init__(self, key: LakeKey) -> None:
        import duckdb

        self.key = key
        self.pid = os.getpid()
        self.temp_dir = Path(tempfile.mkdtemp(prefix="sched-ducklake-"))
        config = {
            **dict(key.settings),
            # Spills of a memory_limit go here; extensions come only from the wheels' files.
            "temp_directory": str(self.temp_dir / "spill"),
            "extension_directory": str(self.temp_dir / "no-extensions"),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        try:
            self.root = duckdb.connect(":memory:", config=config)
        except BaseException:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            raise
        try:
            self._attach()
        except BaseException:
            self.close()
            raise

    def _attach(self) -> None:
        import duckdb

        location, data_path = self.key.location, self.key.data_path
        load_extension(self.root, "ducklake")
        if location.kind is WarehouseKind.DUCKLAKE_POSTGRES:
            load_extension(self.root, "postgres_scanner")
        else:
            load_extension(self.root, "sqlite_scanner")
            self._prepare_sqlite_catalog()
        if is_remote(data_path):
            load_extension(self.root, "httpfs")
        elif not self.key.read_only:
            _make_directory(Path(data_path), what="DuckLake data folder", env=DATA_PATH_ENV)
        options = [f"DATA_PATH {quote_literal(data_path)}"] + (["READ_ONLY"] if self.key.read_only else [])
        attach = f"ATTACH {quote_literal(location.attach_uri)} AS {LAKE_ALIAS} ({', '.join(options)})"
        delays = backoff_delays(first=0.05, cap=1.0)
        for attempt in range(1, _ATTACH_ATTEMPTS + 1):
            try:
                self.root.execute(attach)
                return
            except duckdb.Error as exc:
                message = location.redact(str(exc))
            # Several processes creating a new catalog at once: one wins, the others' creation rolls
            # back ("duplicate key", "already exists", SQLite "database is locked"); attach again.
            if attempt == _ATTACH_ATTEMPTS or not _CATALOG_CREATION_RACE.search(message):
                break
            time.sleep(next(delays))
        raise _attach_error(location, data_path, self.key.read_only, message)

    def _prepare_sqlite_catalog(self) -> None:
        """Put the SQLite catalog in WAL mode, so readers never block a committing writer.

        In SQLite's default rollback-journal mode an open reader makes every other process's commit
        (and even its reads) fail with "database is locked"; in WAL mode only concurrent commits
        collide, and those are retried. The mode is stored in the file; set once, it stays.
        """
        path = Path(self.key.location.target)
        if self.key.read_only:
            if not path.is_file():
                raise TableNotFoundError(f"no DuckLake catalog at {path} yet; materialize the assets first")
            return
        import sqlite3

        _make_directory(path.parent, what="directory of the DuckLake catalog", env=DATABASE_ENV)
        try:
            db = sqlite3.connect(path, timeout=10)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise WarehouseError(
                f"cannot open the DuckLake SQLite catalog {path}: {exc}; set {DATABASE_ENV} to a writable "
                "'ducklake:sqlite:PATH' on a local disk"
            ) from exc

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = self.root.cursor()
        try:
            con.execute(f"USE {LAKE_ALIAS}")
        except BaseException:
            con.close()
            raise
        return con

    def close(self) -> None:
        if self.pid == os.getpid():  # a forked child must not close its parent's Postgres sessions
            with contextlib.suppress(Exception):
                self.root.close()
            shutil.rmtree(self.temp_dir, ignore_errors=True)


_lakes: dict[LakeKey, _Lake] = {}
_retired: list[_Lake] = []  # discarded after an error, still used by other threads' connections
_lakes_lock = threading.Lock()


def lake_connection(key: LakeKey) -> duckdb.DuckDBPyConnection:
    """A new connection to the process's attached lake for `key` (attached on first use), `lake` in USE."""
    with _lakes_lock:
        lake = _lakes.get(key)
        if lake is not None and lake.pid != os.getpid():  # inherited through fork: not ours to use
            lake = None
        if lake is None:
            lake = _lakes[key] = _Lake(key)
        return lake.connection()  # cursor() under the lock: threads share the in-memory database


def forget_lake(key: LakeKey, *, close: bool = False) -> None:
    """Discard the process's attached lake for `key`: the next use attaches it again.

    After a connection error (`close=False`) it is only set aside, and closed at exit: closing a DuckDB
    connection closes its cursors, and other threads may be writing on it (their own errors, if any,
    are theirs to retry). `close=True` (`Warehouse.release`) closes it now, with any set aside for `key`.
    """
    with _lakes_lock:
        lake = _lakes.pop(key, None)
        if not close:
            if lake is not None:
                _retired.append(lake)
            return
        lakes = [lake] if lake is not None else []
        lakes += [old for old in _retired if old.key == key]
        _retired[:] = [old for old in _retired if old.key != key]
    for lake in lakes:
        lake.close()


@atexit.register
def _close_lakes() -> None:
    with _lakes_lock:
        lakes = [*_lakes.values(), *_retired]
        _lakes.clear()
        _retired.clear()
    for lake in lakes:
        lake.close()


def is_broken_connection(exc: BaseException) -> bool:
    """Whether an error may have left the attached lake unusable (lost Postgres session, fatal DuckDB error)."""
    import duckdb

    if isinstance(exc, duckdb.FatalException | duckdb.InternalException | duckdb.ConnectionException):
        return True
    text = str(exc)
    return (
        isinstance(exc, duckdb.IOException) or "Postgres" in text or "database has been invalidated" in text
    )


def _make_directory(path: Path, *, what: str, env: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(f"cannot create the {what} {path}: {exc.strerror or exc}; check {env}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise WarehouseError(f"the {what} {path} is not writable; check {env}")


def _attach_error(
    location: WarehouseLocation, data_path: str, read_only: bool, message: str
) -> WarehouseError:
    """A clear error for a failed ATTACH (the message is already redacted)."""
    if "does not match existing data path" in message:
        return WarehouseError(
            f"{DATA_PATH_ENV}={data_path!r} is not where the DuckLake catalog {location} keeps its data "
            f"files: every process must use the catalog's data path. DuckLake says: {message}"
        )
    if read_only and "creating a new DuckLake is explicitly disabled" in message:
        return TableNotFoundError(f"no DuckLake catalog in {location} yet; materialize the assets first")
    hint = (
        "is the Postgres server running, does the database exist, and may this user connect"
        if location.kind is WarehouseKind.DUCKLAKE_POSTGRES
        else "is the file a DuckLake catalog on a local disk"
    )
    return WarehouseError(
        f"cannot attach the DuckLake catalog {location} (check {DATABASE_ENV}: {hint}?): {message}"
    )
