"""Spill typed page frames to Parquet so a large resource never sits in memory as a whole."""

from __future__ import annotations

from pathlib import Path

import polars as pl


class PageSpill:
    """Collects page frames and writes them to numbered Parquet files in `directory`.

    Pages are buffered up to `batch_rows` rows so DuckDB later reads a few files rather than
    thousands of tiny ones; memory stays bounded by one batch. Parts stay small on purpose: DuckDB
    decodes a Parquet row group whole, and 100k-row groups of wide booking rows overflow the IO
    manager's 128 MB write budget, while 10k-row parts ingest a million bookings within it.
    """

    def __init__(self, directory: Path, batch_rows: int = 10_000) -> None:
        self._directory = directory
        self._batch_rows = batch_rows
        self._buffer: list[pl.DataFrame] = []
        self._buffered_rows = 0
        self.paths: list[Path] = []
        self.rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self._buffer.append(frame)
        self._buffered_rows += frame.height
        self.rows += frame.height
        if self._buffered_rows >= self._batch_rows:
            self._flush()

    def finish(self) -> list[Path]:
        """Flush the last batch; the parts in page order (storage dedupes on the key: last wins)."""
        self._flush()
        return self.paths

    def _flush(self) -> None:
        if not self._buffer:
            return
        path = self._directory / f"part-{len(self.paths):06d}.parquet"
        pl.concat(self._buffer, how="vertical").write_parquet(path, compression="lz4", statistics=False)
        self.paths.append(path)
        self._buffer.clear()
        self._buffered_rows = 0
