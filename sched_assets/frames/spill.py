"""Spill a resource's records to disk as JSON and type them in DuckDB, batch by batch, into Parquet.

Python's only per-page work is one encode of the page's records: views (`api.views`, declared fields
kept as the server's JSON text) in one `msgspec` call, or dicts (a page the views do not fit) with
`orjson.dumps` after a key-set union that marks the rare record with undeclared fields (see
`typed_sql`). Every `batch_rows` records (or `batch_bytes` of them), the process's in-memory DuckDB
(one for all spills, a connection each) types the batch (one JSON array) with the spec's SQL
(`typed_sql`) into a numbered Parquet part, collects the metadata counts, and the JSON is deleted.
Typing runs while the next pages are on the wire (DuckDB releases the GIL), memory stays bounded by one
batch, and the write later reads the typed parts twice (key pass, insert), the key pass only their
key columns. Storage dedupes the parts on the key (last wins); nothing is deduplicated here.

Secret fields never reach this module (the client strips them); a record that still carried one is
refused before its batch is typed, and its file deleted.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sched_assets.api.specs import EndpointSpec
from sched_assets.api.views import RecordView
from sched_assets.api.views import encode as encode_views
from sched_assets.frames.columns import column_types
from sched_assets.frames.typed_sql import (
    CONVERTED,
    MISFITS,
    RECORD,
    SECRETS,
    UNDECLARED_MARK,
    UNKNOWN,
    suspect_field,
    suspects_sql,
    trusted_select,
    typed_select,
)
from sched_assets.storage.naming import quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb

PREVIEW_ROWS = 5
BATCH_ROWS = 10_000  # Parquet parts stay small: DuckDB decodes a row group whole within the write's budget
# ... and so does a batch's JSON: wide records (many attendees, seats, answers) make smaller batches.
# 8 MB (~2,000 nested bookings, ~6,000 standard): typing as fast as with 16 MB, and the read's peak
# ~35 MB lower on 100,000 nested bookings (`benchmarks/step_phases.py`, 2026-12-04).
BATCH_BYTES = 8 << 20
# All typing of the process at once (`_typing_database`): a run types ~8 accounts' resources together
# (256 MB ran out at 2,000 bookings each; 1 GB measured peaks: 389 MB for one 100,000-booking account,
# 450 MB per run of 25 accounts).
_MEMORY_LIMIT = "1GB"
_MIN_OBJECT_BYTES = 1 << 20
_THREADS = 1  # the typer shares the machine with the page readers and the other resources
_PENDING = 2  # batches handed to the typer and not typed yet


@dataclass
class TypingStats:
    """What typing did to one resource's records, reported as asset metadata."""

    rows: int = 0
    converted: int = 0
    kept_in_extra: int = 0
    unknown_fields: set[str] = field(default_factory=set)
    misfit_fields: set[str] = field(default_factory=set)


@dataclass
class Preview:
    """The first rows of a resource, for the asset page."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


_typing_lock = threading.Lock()
_typing: duckdb.DuckDBPyConnection | None = None


def _typing_database() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for typing batches, created once: a new database costs ~10 ms,
    and a run of many accounts types ~7 resources per account. Its memory limit bounds all typing
    at once; beyond it DuckDB spills to an owner-only directory (typed records, never secrets) that
    it empties as it goes."""
    global _typing
    with _typing_lock:
        if _typing is None:
            import duckdb

            spill = tempfile.mkdtemp(prefix="sched_assets_typing_")  # mode 0700
            atexit.register(_close_typing_database, spill)
            _typing = duckdb.connect(
                config={
                    "memory_limit": _MEMORY_LIMIT,
                    "temp_directory": spill,
                    "threads": _THREADS,
                    # Rows keep page order (storage's last-wins dedupe reads it).
                    "preserve_insertion_order": True,
                }
            )
            # Naive timestamps are UTC, in every cursor (a setting, not a connect option: it needs ICU).
            _typing.execute("SET GLOBAL TimeZone = 'UTC'")
        return _typing


def _close_typing_database(spill: str) -> None:
    global _typing
    with _typing_lock:
        if _typing is not None:
            _typing.close()
            _typing = None
    shutil.rmtree(spill, ignore_errors=True)


def _dumps(records: list[dict[str, Any]]) -> bytes:
    try:
        return orjson.dumps(records, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # Integers beyond 64 bits (the client parses them exactly) are valid JSON; keep them exactly.
        return json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode()


class SecretInSpillError(RuntimeError):
    """A record reached the spill with a secret field: a bug in the client's stripping, never stored."""


class RecordSpill:
    """Collects one resource's records and turns them into typed Parquet parts in `directory`.

    Batches are typed by one background thread, in order, while the caller goes on reading pages; at
    most `_PENDING` batches wait, so a slow typer slows the reader instead of filling the disk.
    `cursor_column` (snake_case, optional) is tracked while typing: its newest value and how many rows
    lack one, so nothing re-reads the parts for the incremental cursor.
    """

    def __init__(
        self,
        spec: EndpointSpec,
        directory: Path,
        synced_at: datetime,
        *,
        cursor_column: str | None = None,
        batch_rows: int = BATCH_ROWS,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.spec = spec
        self._directory = directory
        self._synced_at = synced_at.isoformat()
        self._cursor_column = cursor_column
        self._batch_rows, self._batch_bytes_limit = batch_rows, batch_bytes
        self._columns = list(column_types(spec))
        self._known = frozenset(spec.columns)
        self._file: Any = None
        self._batch_path: Path | None = None
        self._batch_records = 0
        self._batch_bytes = 0
        self._longest = 0  # bytes of the batch's longest record line
        self._marked = False  # the batch has a record with undeclared fields
        self._batches = 0
        self._typer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sched-type-{spec.name}")
        self._pending: deque[Future[None]] = deque()
        self._con: duckdb.DuckDBPyConnection | None = None  # used by the typer thread only
        self.paths: list[Path] = []
        self.stats = TypingStats()
        self.preview: Preview | None = None
        self.newest_cursor: datetime | None = None
        self.without_cursor = 0
        self.trusted_batches = 0  # batches typed by `trusted_select`
        self._suspects: frozenset[str] = frozenset()  # fields with an odd value in an earlier batch

    def add(self, records: list[dict[str, Any]] | list[RecordView]) -> None:
        """Append a page's records (in page order) to the current batch; hand it to the typer when full.

        The batch file is one JSON array, and a page is added to it with one call that encodes its
        list (a quarter of the CPU of one call per record): `api.views.encode` for a page of views,
        else `orjson.dumps` of the dicts, marking those with undeclared fields."""
        if not records:
            return
        if self._file is None:
            self._batch_path = self._directory / f"batch-{self._batches:06d}.json"
            # Owner-only: the spill holds account data (never secrets) until the run ends.
            fd = os.open(self._batch_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._file = os.fdopen(fd, "wb", buffering=1 << 20)
            self._file.write(b"[")
        if isinstance(records[0], RecordView):  # a page of views: declared fields only (`api.views`)
            dumps: Callable[[Any], bytes] = encode_views
        else:
            known = self._known
            if not known.issuperset(set().union(*records)):  # the rare page with undeclared fields
                mark = {UNDECLARED_MARK: True}
                records = [r if r.keys() <= known else {**mark, **r} for r in records]
                self._marked = True
            dumps = _dumps
        data = dumps(records)
        # The JSON reader's buffers are sized to the longest record; a page under the reader's floor
        # cannot hold a longer one, so only a large page is measured record by record.
        longest = len(data)
        if longest > _MIN_OBJECT_BYTES:
            longest = max(len(dumps([r])) - 2 for r in records)
        self._longest = max(self._longest, longest)
        if self._batch_records:
            self._file.write(b",")
        self._file.write(memoryview(data)[1:-1])  # the records, without the page's brackets
        self._batch_records += len(records)
        self._batch_bytes += len(data)
        if self._batch_records >= self._batch_rows or self._batch_bytes >= self._batch_bytes_limit:
            self._submit()

    def finish(self) -> list[Path]:
        """Type the last batch and wait for the typer; the parts in page order. A resource without
        records gets one empty part, so the write still creates (or keeps) the table's columns."""
        try:
            if self._batch_records or not self._batches:
                self._submit()
            while self._pending:
                self._pending.popleft().result()
        finally:
            self.close()
        return self.paths

    def close(self) -> None:
        """Stop typing (pending batches are dropped) and release the file and the connection."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._typer.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        if self._con is not None:
            self._con.close()
            self._con = None

    # ---- typing one batch in DuckDB -------------------------------------------------------------

    def _submit(self) -> None:
        batch = None
        if self._file is not None:
            self._file.write(b"]")
            self._file.close()
            self._file = None
            batch = self._batch_path
        part = self._directory / f"part-{self._batches:06d}.parquet"
        self._batches += 1
        self._batch_records = self._batch_bytes = 0
        longest, self._longest = self._longest, 0
        marked, self._marked = self._marked, False
        self._pending.append(self._typer.submit(self._type_batch, batch, part, longest, marked))
        # Backpressure, and an early stop when typing failed.
        while len(self._pending) > _PENDING or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = _typing_database().cursor()  # a connection of its own: its temp tables are its own
        return self._con

    def _type_batch(self, batch: Path | None, part: Path, longest: int = 0, marked: bool = True) -> None:
        con = self._connection()
        try:
            self._create_batch(con, batch, longest, marked)
        finally:
            if batch is not None:
                batch.unlink(missing_ok=True)
        self._collect(con)
        names = ", ".join(quote_ident(name) for name in self._columns)
        con.execute(
            f"COPY (SELECT {names} FROM batch) TO {quote_literal(str(part))} "
            "(FORMAT parquet, COMPRESSION uncompressed)"
        )
        con.execute("DROP TABLE batch")
        self.paths.append(part)

    def _create_batch(
        self, con: duckdb.DuckDBPyConnection, batch: Path | None, longest: int, marked: bool
    ) -> None:
        """Type one batch into temp table `batch`: with `trusted_select` when no record has undeclared
        fields (the usual batch), so DuckDB's reader types every field no suspect value was found in;
        otherwise, or when that refuses the batch, with `typed_select`."""
        import duckdb

        def create(select: str) -> None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE batch AS {select}")

        if batch is None:  # no records at all: the typed columns over zero rows
            create(typed_select(self.spec, f"(SELECT NULL::JSON AS {RECORD} WHERE false)", self._synced_at))
            return
        # The reader's buffers are twice its largest object (default 16 MB): sized to the batch,
        # the typers of a run's accounts at once fit the shared memory limit.
        size = max(_MIN_OBJECT_BYTES, 2 * longest)
        path = str(batch)
        if not marked:
            # More suspects than the batch has only check more fields: the values are the same.
            if sql := suspects_sql(self.spec, path, self._suspects):
                [(matches,)] = con.execute(sql).fetchall()
                self._suspects |= {suspect_field(match) for match in matches or ()}
            try:  # a timestamp that does not parse stops it: the checked path keeps it in `_extra`
                create(trusted_select(self.spec, path, size, self._synced_at, self._suspects))
                self.trusted_batches += 1
                return
            except duckdb.Error:
                pass
        source = f"read_json_objects({quote_literal(path)}, format = 'array', maximum_object_size = {size})"
        create(typed_select(self.spec, source, self._synced_at))

    def _collect(self, con: duckdb.DuckDBPyConnection) -> None:
        cursor = quote_ident(self._cursor_column) if self._cursor_column else "NULL::TIMESTAMPTZ"
        rows, converted, kept, unknown, misfits, secrets, newest, without = con.execute(
            f"SELECT count(*), coalesce(sum({CONVERTED}), 0), coalesce(sum(len({MISFITS})), 0), "
            f"list_distinct(flatten(list({UNKNOWN}))), list_distinct(flatten(list({MISFITS}))), "
            f"coalesce(sum({SECRETS}), 0), max({cursor}), count(*) FILTER (WHERE {cursor} IS NULL) FROM batch"
        ).fetchall()[0]
        if secrets:
            raise SecretInSpillError(
                f"{self.spec.name}: {secrets} record(s) reached the spill with a secret field; nothing was "
                "written. This is a bug in the API client's secret stripping: please report it."
            )
        stats = self.stats
        stats.rows += rows
        stats.converted += int(converted)
        stats.kept_in_extra += int(kept)
        stats.unknown_fields.update(unknown or ())
        stats.misfit_fields.update(misfits or ())
        if self._cursor_column:
            self.without_cursor += int(without)
            if newest is not None and (self.newest_cursor is None or newest > self.newest_cursor):
                self.newest_cursor = newest
        if self.preview is None and rows:
            columns = list(self.spec.preview_columns)
            names = ", ".join(quote_ident(name) for name in columns)
            self.preview = Preview(
                columns, con.execute(f"SELECT {names} FROM batch LIMIT {PREVIEW_ROWS}").fetchall()
            )
