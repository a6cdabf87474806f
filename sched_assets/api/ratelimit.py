"""Client-side pacing from the server's rate-limit headers, shared by every worker thread.

The real API blocks a key for 60 s once it exceeds 120 requests per 60 s, and every request during the
block is refused. Retrying through that is useless and repeated breaches lock accounts, so we never
send the request that would exceed the budget: when the remaining budget (minus requests already in
flight) reaches the reserve, every worker waits for the window to reset.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

# Reset headers above this are epoch seconds rather than "seconds until reset".
_EPOCH_THRESHOLD = 1e9
# Waiting slightly past the announced reset keeps us clear of clock skew and integer rounding.
_RESET_MARGIN_SECONDS = 0.5
# How often a worker re-checks while another request's answer is needed to know the budget.
_POLL_SECONDS = 0.02


def _header_int(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def seconds_until_reset(
    headers: Mapping[str, str], wall_clock: Callable[[], float] = time.time
) -> float | None:
    """`X-RateLimit-Reset-Default` as seconds from now (it may be a delay or an epoch time)."""
    reset = _header_int(headers, "x-ratelimit-reset-default")
    if reset is None:
        return None
    if reset > _EPOCH_THRESHOLD:
        reset -= wall_clock()
    return max(0.0, reset)


def retry_after_seconds(headers: Mapping[str, str], default: float, maximum: float) -> float:
    """How long to wait after a 429: Retry-After, else the reset header, else `default`; at most `maximum`."""
    wait = _header_int(headers, "retry-after")
    if wait is None:
        wait = seconds_until_reset(headers)
    if wait is None:
        wait = default
    return min(max(wait, 0.0) + _RESET_MARGIN_SECONDS, maximum)


class RateLimitPacer:
    """Tracks the server's request budget and makes workers wait instead of tripping a block."""

    def __init__(
        self,
        reserve: int = 1,
        max_wait: float = 180.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> None:
        self._reserve = max(0, reserve)
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._blocked_until = 0.0
        self._in_flight = 0
        self.waits = 0
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Block until a request may be sent without exceeding the budget; count it as in flight."""
        while True:
            with self._lock:
                now = self._clock()
                self._roll_window(now)
                wait, pacing = self._wait_needed(now)
                if wait <= 0:
                    self._in_flight += 1
                    if self._remaining is not None:
                        self._remaining -= 1
                    return
                if pacing:
                    self.waits += 1
                    self.waited_seconds += wait
            if pacing and self._on_wait is not None:
                self._on_wait(wait, "rate-limit budget used up; waiting for the window to reset")
            self._sleep(wait)

    def release(self, headers: Mapping[str, str] | None) -> None:
        """Record a finished request and what its headers say about the budget."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if headers is None:
                return
            limit = _header_int(headers, "x-ratelimit-limit-default")
            remaining = _header_int(headers, "x-ratelimit-remaining-default")
            reset_in = seconds_until_reset(headers)
            if limit is not None:
                self._limit = int(limit)
            if remaining is None or reset_in is None:
                return
            now = self._clock()
            # A nonsense reset (milliseconds, a far-future epoch) must not park the sync for hours.
            reset_at = now + min(reset_in, self._max_wait) + _RESET_MARGIN_SECONDS
            # Responses from one window can arrive out of order: trust the lowest count it reported.
            # `_remaining` already excludes requests in flight, so compare against the server's view.
            server_remaining = int(remaining) - self._in_flight
            if self._reset_at is None or reset_at > self._reset_at + 2 * _RESET_MARGIN_SECONDS + 1:
                self._remaining = server_remaining
                self._reset_at = reset_at
            else:
                self._remaining = min(
                    self._remaining if self._remaining is not None else server_remaining, server_remaining
                )
                self._reset_at = max(self._reset_at, reset_at)

    def block_for(self, seconds: float) -> None:
        """After a 429: nobody sends anything until the block is over."""
        with self._lock:
            until = self._clock() + seconds
            self._blocked_until = max(self._blocked_until, until)
            self._remaining = None
            self._reset_at = None

    def _roll_window(self, now: float) -> None:
        if self._reset_at is not None and now >= self._reset_at:
            # A new window: the full budget is back (unknown until a response says otherwise).
            self._remaining = self._limit
            self._reset_at = None

    def _wait_needed(self, now: float) -> tuple[float, bool]:
        """(seconds to wait, whether that is a real rate-limit wait rather than a short poll)."""
        if now < self._blocked_until:
            return self._blocked_until - now, True
        if self._remaining is None:
            # Budget unknown (first request, or just after a block): probe with one request at a time.
            return (0.0 if self._in_flight == 0 else _POLL_SECONDS), False
        if self._remaining - self._reserve > 0:
            return 0.0, False
        if self._reset_at is None:
            # Budget spent but no reset known yet: wait for in-flight answers to tell us.
            return _POLL_SECONDS, False
        return max(self._reset_at - now, 0.01), True
