"""Keyset reads of a paged resource: by position in a stable order, in parallel slices.

Each request asks for rows at or after the last row's value (`afterUpdatedAt=<its updatedAt>`,
inclusive), skipping only rows already seen at exactly that value. A row deleted behind the read shifts
nothing; a row edited during an `updatedAt` read moves to the end of the order and is read there. The
value range is split into slices (`after..before`, the last one open-ended) read concurrently, each by
keyset, so the read keeps the parallelism of offset paging inside the same rate-limit budget.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sched_assets.api.client import Page, Record, SchedApiClient, StopReason, SyncStats, record_key
from sched_assets.api.specs import EndpointSpec, Keyset

_DONE = object()
_MS = timedelta(milliseconds=1)
SLICES_PER_WORKER = 3


@dataclass(frozen=True)
class Slice:
    """Rows with `after <= value <= before` (None: unbounded), read from `skip` rows into `after`."""

    after: str | None
    before: str | None
    skip: int = 0


def iter_keyset(
    client: SchedApiClient,
    spec: EndpointSpec,
    order: Keyset,
    stats: SyncStats,
    lower: str | None = None,
    check_total: bool = False,
) -> Iterator[Page]:
    """Every row of `spec` with `order.field >= lower` (all rows when None), by keyset, in slices.

    With `check_total`, a fresh count taken after the read must not exceed the distinct rows read;
    otherwise `stats.complete` is False (a full refresh must then not delete what it did not see).
    """
    return _KeysetRead(client, spec, order, stats, check_total).pages(lower)


class _KeysetRead:
    def __init__(
        self, client: SchedApiClient, spec: EndpointSpec, order: Keyset, stats: SyncStats, check_total: bool
    ) -> None:
        self.client, self.spec, self.order, self.stats = client, spec, order, stats
        self.take = client.config.page_size
        self.check_total = check_total
        self._lock = threading.Lock()
        self._numbers = 0
        # Rows emitted: distinct, since repeats of a page's tail are dropped and slices do not overlap.
        self._rows = 0
        self._cap_logged = False
        self._stop = threading.Event()

    def pages(self, lower: str | None) -> Iterator[Page]:
        stats = self.stats
        try:
            first = self._fetch(Slice(lower, None))
            yield from self._emit(first)
            next_slice = self._advance(Slice(lower, None), first)
            if next_slice is None:
                stats.stopped_by = stats.stopped_by or StopReason.NO_NEXT_PAGE
            else:
                slices = self._split(next_slice, first)
                yield from self._read_slices(slices, first.records)
            if self.check_total:
                self._check_total()
        finally:
            self._stop.set()
            self.client.finish_stats(stats)

    # ---- slices -------------------------------------------------------------------------------

    def _split(self, start: Slice, first: Page) -> list[Slice]:
        """The rest of the range in slices of equal time span (the last open-ended).

        Rows are rarely spread evenly over time, so there are a few slices per worker: a worker that
        finishes a thin slice takes the next, and the busy end of the range does not run alone.
        """
        total = _int((first.pagination or {}).get("totalItems"))
        workers = self.client.config.concurrency
        k = workers * SLICES_PER_WORKER
        low = _parse(start.after)
        if workers <= 1 or low is None or total is None or total <= self.take * workers:
            return [start]
        high = datetime.now(UTC)
        if high <= low:
            return [start]
        step = (high - low) / k
        cuts = [low + step * i for i in range(1, k)]
        # Both bounds are inclusive: each slice ends a millisecond before the next begins (the API's
        # timestamps have millisecond precision), so no row is in two slices.
        ends = [_iso(cut - _MS) for cut in cuts]
        slices = [Slice(start.after, ends[0], start.skip)]
        slices += [Slice(_iso(cut), end) for cut, end in zip(cuts, [*ends[1:], None], strict=True)]
        return slices

    def _read_slices(self, slices: list[Slice], first: list[Record]) -> Iterator[Page]:
        """Read the slices; the first continues the first page (whose tail it may repeat)."""
        if len(slices) == 1:
            yield from self._read_slice(slices[0], first)
            return
        # Workers hand pages over a small queue: memory stays bounded by a few pages.
        workers = min(len(slices), self.client.config.concurrency)
        pages: queue.Queue = queue.Queue(maxsize=2 * workers)

        def work(piece: Slice) -> None:
            try:
                for page in self._read_slice(piece, first if piece is slices[0] else None):
                    pages.put(page)
            except BaseException as exc:
                self._stop.set()
                pages.put(exc)
            finally:
                pages.put(_DONE)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sched-keyset") as pool:
            for piece in slices:
                pool.submit(work, piece)
            running = len(slices)
            try:
                while running:
                    item = pages.get()
                    if item is _DONE:
                        running -= 1
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        yield item
            finally:
                self._stop.set()
                while running:  # let blocked workers finish
                    if pages.get() is _DONE:
                        running -= 1

    def _read_slice(self, piece: Slice, previous: list[Record] | None = None) -> Iterator[Page]:
        current: Slice | None = piece
        stale = 0  # pages in a row that brought nothing new
        previous_span = _span(previous, self.order.field) if previous else None
        while current is not None and not self._stop.is_set():
            page = self._fetch(current)
            span = _span(page.records, self.order.field)
            fresh = self._fresh(page.records, previous, span, previous_span)
            stale = stale + 1 if page.records and not fresh else 0
            if stale >= 2:
                # Position and offset both moved and the server still answers old rows: it ignores the
                # keyset filter. Stop rather than loop; the read is incomplete.
                self.stats.complete = False
                self.stats.stopped_by = StopReason.LOOP_GUARD
                self.client.log.warning(
                    f"{self.spec.name}: the server keeps answering rows already read ({self.order.after_param}="
                    f"{current.after}, skip={current.skip}): it seems to ignore {self.order.after_param}. "
                    "Stopping this read, which is incomplete."
                )
                return
            yield from self._emit(Page(page.number, fresh, page.skip, page.pagination))
            current = self._advance(current, page)
            previous, previous_span = page.records, span

    def _fresh(
        self,
        records: list[Record],
        previous: list[Record] | None,
        span: tuple[str, str] | None,
        previous_span: tuple[str, str] | None,
    ) -> list[Record]:
        """`records` without the rows the previous page of this slice delivered unchanged.

        Re-reading a short run of equal timestamps repeats the previous page's tail; a row that changed
        in between is kept (its newer version wins downstream). `span`, `previous_span`: the two pages'
        `_span`s.
        """
        if not previous or not records:
            return records
        if span is not None and previous_span is not None and span[0] > previous_span[1]:
            # Every value of this page sorts after every value of the previous one, so no row of it is an
            # unchanged repeat (same text in both): the usual page, with no key comparisons.
            return records
        before = {record_key(self.spec, r): r for r in previous}
        return [r for r in records if before.get(record_key(self.spec, r)) != r]

    # ---- one page -------------------------------------------------------------------------------

    def _fetch(self, piece: Slice) -> Page:
        order = self.order
        params = {order.sort_param: "asc", "take": str(self.take), "skip": str(piece.skip)}
        if piece.after is not None:
            params[order.after_param] = piece.after
        if piece.before is not None:
            params[order.before_param] = piece.before
        with self._lock:
            self._numbers += 1
            number = self._numbers
        return self.client.fetch_page(self.spec, params, number, self.stats)

    def _emit(self, page: Page) -> Iterator[Page]:
        if page.records:
            with self._lock:
                self._rows += len(page.records)
            self.stats.add(pages=1, records=len(page.records))
            yield page

    def _advance(self, piece: Slice, page: Page) -> Slice | None:
        """The next request of this slice, or None when the server says it is done."""
        records = page.records
        pagination = page.pagination
        if not records:
            self._note_stop(StopReason.EMPTY_PAGE)
            return None
        if pagination is not None and pagination.get("hasNextPage") is False:
            self._note_stop(StopReason.NO_NEXT_PAGE)
            return None
        if pagination is None and len(records) < self.take:
            self._note_stop(StopReason.SHORT_PAGE)
            return None
        if len(records) < self.take and not self._cap_logged:
            self._cap_logged = True
            self.client.log.warning(
                f"{self.spec.name}: the server serves at most {len(records)} records a page (asked for "
                f"{self.take}; it announces itemsPerPage={pagination.get('itemsPerPage') if pagination else None})."
                " Reading on by position."
            )
        last = records[-1].get(self.order.field)
        if not isinstance(last, str):
            # No position (null): go on by offset within this request's filter.
            return Slice(piece.after, piece.before, piece.skip + len(records))
        if last == piece.after:
            # The whole page sits at one value: step over it by offset within that value.
            return Slice(piece.after, piece.before, piece.skip + len(records))
        run = sum(1 for r in records if r.get(self.order.field) == last)
        # A short run is read again from its start: an edit during the read may have shrunk it, and a
        # skip counted before that edit would pass over a row. Repeats are de-duplicated on the key.
        return Slice(last, piece.before, 0 if run < self.take // 2 else run)

    def _note_stop(self, reason: StopReason) -> None:
        with self._lock:
            if self.stats.stopped_by is None:
                self.stats.stopped_by = reason

    def _check_total(self) -> None:
        """A fresh count after the read: more rows than were read means the read missed some."""
        page = self.client.fetch_page(self.spec, {"take": "1", "skip": "0"}, 0, self.stats)
        total = _int((page.pagination or {}).get("totalItems"))
        self.stats.rows_counted_after = total
        if total is not None and total > self._rows:
            self.stats.complete = False
            self.client.log.warning(
                f"{self.spec.name}: read {self._rows} distinct rows, but the server counts {total} after "
                "the read: the read is incomplete, so no row is deleted and the cursor is kept."
            )


def _span(records: list[Record], field: str) -> tuple[str, str] | None:
    """The least and greatest `field` of `records` in text order, when every one is text; else None.

    Text order is enough for `_fresh`: a repeated row has the very same text in both pages."""
    values = [r.get(field) for r in records]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return min(values), max(values)  # type: ignore[type-var]


def _parse(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
