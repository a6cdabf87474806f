"""Live changes: the account edits and hard-deletes bookings while a client pages through it.

Driven by the `Faults` knobs `edits_per_page`, `deletes_per_page`, `edit_targets` and
`live_changes_after` (the app checks the last one). Targets are placed relative to the page just
served in "the query's order": the order the request sorts by (id order without a sort param) over
the whole account, filters aside, so a keyset reader (whose filter excludes what it already read)
and an offset reader see the same kind of change.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable, Sequence

from sched_assets.demo.faults import Faults
from sched_assets.demo.generator import DemoAccount
from sched_assets.demo.orders import Window
from sched_assets.demo.pages import ServedPage


def apply_live_changes(
    account: DemoAccount, served: ServedPage, faults: Faults, rng: random.Random
) -> tuple[int, int]:
    """Edit and delete what is due after serving `served`; returns (edited, deleted).

    Deleted rows come from BEFORE the page's first row (read already), which makes the next offset
    page skip a row. Edited rows get a new latest updatedAt (the end of updatedAt order), a bumped
    version (title, description) and sometimes a new status (`DemoAccount.touch`); with
    `edit_targets="unread"` they come from AFTER the page's last row. Pages without rows change
    nothing. The same draws are made whatever the account holds, so runs are reproducible.
    """
    if not served.page:
        return 0, 0
    n_edits, n_deletes = _count(rng, faults.edits_per_page), _count(rng, faults.deletes_per_page)
    if not n_edits and not n_deletes:
        return 0, 0
    with account.lock:
        order, position = _query_order(account, served)
        first, last = position(served.page[0]), position(served.page[-1])
        doomed = _pick(rng, order, 0, first, n_deletes)
        if faults.edit_targets == "unread":
            edits = _pick(rng, order, last + 1, len(order), n_edits)
        else:
            edits = _pick(rng, account.live_slots(), 0, account.booking_count, n_edits)
        deleted = account.delete(account.id_base + s for s in doomed) if doomed else 0
        gone = set(doomed)
        edits = [s for s in edits if s not in gone]
        edited = len(account.touch([account.id_base + s for s in edits])) if edits else 0
    return edited, deleted


def _count(rng: random.Random, mean: float) -> int:
    """`mean` rounded up or down at random, so the average over many pages is `mean`."""
    whole = int(mean)
    return whole + (rng.random() < mean - whole)


def _pick(rng: random.Random, order: Sequence[int], lo: int, hi: int, n: int) -> list[int]:
    """Up to `n` distinct slots from `order[lo:hi]`."""
    if hi <= lo or n <= 0:
        return []
    return [order[i] for i in rng.sample(range(lo, hi), min(n, hi - lo))]


def _query_order(account: DemoAccount, served: ServedPage) -> tuple[Sequence[int], Callable[[int], int]]:
    """(every live slot in the query's order, slot -> its position there): O(log n) per lookup."""
    q = served.query
    if q.sort is None:
        live = account.live_slots()
        return live, lambda slot: bisect_left(live, slot)
    maintained = account.field_order(q.sort)
    window = Window(maintained.order, nulls=maintained.nulls, descending=q.descending)
    return window, lambda slot: maintained.position(slot, q.descending)
