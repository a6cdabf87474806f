"""Sorted orders of live booking slots, kept correct across mutations without re-sorting.

A `FieldOrder` holds the live slots sorted by (value, slot) (so ties always come in id order and
`skip` within a run of equal timestamps is stable), plus the slots whose value is null (< 0) in slot
order. Mutations remove slots before their value changes and insert them after: a few slots cost
a binary search and a memmove each, a large batch one linear merge. `Window` is a copy-free view of
a range of such an order, so a keyset page costs O(log n + take) at any account size.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

# Up to this many slots per mutation: edit in place; more: one linear rebuild by slices.
_IN_PLACE = 32


def remove_sorted(seq: array, items: Iterable[int], key: Callable[[int], object]) -> array:
    """`seq` (sorted by `key`) without `items` (each present, keyed by its current value)."""
    positions = sorted(bisect_left(seq, key(s), key=key) for s in items)
    if len(positions) <= _IN_PLACE:
        for i in reversed(positions):
            del seq[i]
        return seq
    out, prev = array("q"), 0
    for i in positions:
        out.extend(seq[prev:i])
        prev = i + 1
    out.extend(seq[prev:])
    return out


def insert_sorted(seq: array, items: Iterable[int], key: Callable[[int], object]) -> array:
    """`seq` (sorted by `key`) with `items` inserted at their places."""
    ordered = sorted(items, key=key)
    if len(ordered) <= _IN_PLACE:
        for s in ordered:
            insort(seq, s, key=key)
        return seq
    out, prev = array("q"), 0
    for s in ordered:
        i = bisect_left(seq, key(s), lo=prev, key=key)
        out.extend(seq[prev:i])
        out.append(s)
        prev = i
    out.extend(seq[prev:])
    return out


def _by_slot(slot: int) -> int:
    return slot


class FieldOrder:
    """Live slots sorted by (values[slot], slot), and the slots where the value is null (< 0)."""

    __slots__ = ("nulls", "order", "values")

    def __init__(self, values: array, live: Sequence[int]) -> None:
        self.values = values
        self.nulls = array("q", [s for s in live if values[s] < 0])
        keep = [s for s in live if values[s] >= 0] if self.nulls else list(live)
        keep.sort(key=values.__getitem__)  # stable: equal values stay in slot (id) order
        self.order = array("q", keep)

    def key(self, slot: int) -> tuple[int, int]:
        return (self.values[slot], slot)

    def remove(self, slots: Iterable[int]) -> None:
        """Forget `slots`; call before their value changes (they are found by it)."""
        slots = list(slots)
        self.order = remove_sorted(self.order, [s for s in slots if self.values[s] >= 0], self.key)
        if self.nulls:
            self.nulls = remove_sorted(self.nulls, [s for s in slots if self.values[s] < 0], _by_slot)

    def insert(self, slots: Iterable[int]) -> None:
        """Place `slots` by their current value."""
        slots = list(slots)
        self.order = insert_sorted(self.order, [s for s in slots if self.values[s] >= 0], self.key)
        self.nulls = insert_sorted(self.nulls, [s for s in slots if self.values[s] < 0], _by_slot)

    def position(self, slot: int, descending: bool) -> int:
        """Where a live slot stands in `Window(order, nulls=nulls, descending)` over the whole order."""
        if self.values[slot] < 0:
            i = bisect_left(self.nulls, slot)
            return i if descending else len(self.order) + i
        i = bisect_left(self.order, self.key(slot), key=self.key)
        return len(self.nulls) + len(self.order) - 1 - i if descending else i


class Window(Sequence[int]):
    """`order[lo:hi] + nulls` (descending: `nulls + order[lo:hi][::-1]`, as Postgres puts NULLs), uncopied."""

    __slots__ = ("_desc", "_hi", "_lo", "_nulls", "_order")

    def __init__(
        self,
        order: array,
        lo: int = 0,
        hi: int | None = None,
        nulls: array | None = None,
        descending: bool = False,
    ) -> None:
        self._order, self._lo = order, lo
        self._hi = len(order) if hi is None else hi
        self._nulls = nulls if nulls is not None else array("q")
        self._desc = descending

    def __len__(self) -> int:
        return self._hi - self._lo + len(self._nulls)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> array: ...
    def __getitem__(self, index: int | slice) -> int | array:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return array("q", [self[i] for i in range(start, stop, step)])
            return self._range(start, max(start, stop))
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(index)
        return self._range(index, index + 1)[0]

    def __iter__(self) -> Iterator[int]:
        return iter(self._range(0, len(self)))

    def _range(self, start: int, stop: int) -> array:
        """Items [start, stop) as a new array: slices of the two parts, never a walk over the order."""
        n_nulls, lo, hi = len(self._nulls), self._lo, self._hi
        if not self._desc:
            head = self._order[lo + min(start, hi - lo) : lo + min(stop, hi - lo)]
            tail = self._nulls[max(0, start - (hi - lo)) : max(0, stop - (hi - lo))]
        else:
            head = self._nulls[min(start, n_nulls) : min(stop, n_nulls)]
            a, b = max(0, start - n_nulls), max(0, stop - n_nulls)  # positions in the reversed part
            tail = self._order[max(lo, hi - b) : hi - a]
            tail.reverse()
        head.extend(tail)
        return head
