"""Rate limiting with NestJS-throttler semantics, as the real API applies it per API key."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """`limit` requests per `window` seconds; exceeding it blocks the key for `block` seconds."""

    limit: int = 120
    window: float = 60.0
    block: float = 60.0

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """`"120/60/60"` (limit/window/block) or `"120/60"` (block = window); `"none"`/`"off"` -> None."""
        if text.strip().lower() in ("", "none", "off", "0"):
            return None
        parts = [p.strip() for p in text.split("/")]
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"rate limit must look like 120/60/60, got {text!r}")
        limit = int(parts[0])
        window = float(parts[1]) if len(parts) > 1 else 60.0
        block = float(parts[2]) if len(parts) > 2 else window
        return cls(limit, window, block)


# What the demo reports when rate limiting is off: the headers are still there, just generous.
UNLIMITED = RateLimit(limit=1_000_000, window=60.0, block=0.0)


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request, and the values of its X-RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window (or the block) ends
    blocked_before: bool  # the key was already blocked when this request arrived

    def headers(self, epoch_now: float | None = None) -> dict[str, str]:
        """The X-RateLimit-* headers; given the wall-clock `epoch_now`, the reset is a Unix time instead."""
        reset = self.reset if epoch_now is None else math.ceil(epoch_now) + self.reset
        return {
            "X-RateLimit-Limit-Default": str(self.limit),
            "X-RateLimit-Remaining-Default": str(self.remaining),
            "X-RateLimit-Reset-Default": str(reset),
        }


@dataclass
class _KeyState:
    window_start: float
    hits: int = 0
    blocked_until: float | None = None


class RateLimiter:
    """Counts requests per key in a fixed window opened by the key's first hit.

    The request that exceeds `limit` is refused and blocks the key for `block` seconds; every request
    during the block is refused too (and not counted). After the block a fresh window starts.
    `enforce=False` only counts, for the "rate limiting off" mode.
    """

    def __init__(self, rule: RateLimit, enforce: bool = True) -> None:
        self.rule = rule
        self.enforce = enforce
        self._keys: dict[str, _KeyState] = {}

    def reset(self) -> None:
        self._keys.clear()

    def hit(self, key: str, now: float) -> Decision:
        rule = self.rule
        state = self._keys.get(key)
        if state is not None and state.blocked_until is not None:
            if now < state.blocked_until:
                return Decision(False, rule.limit, 0, _ceil(state.blocked_until - now), True)
            state = None  # block over: start afresh
        if state is None or now >= state.window_start + rule.window:
            state = self._keys[key] = _KeyState(window_start=now)
        state.hits += 1
        if self.enforce and state.hits > rule.limit:
            state.blocked_until = now + rule.block
            return Decision(False, rule.limit, 0, _ceil(rule.block), False)
        remaining = max(0, rule.limit - state.hits)
        return Decision(True, rule.limit, remaining, _ceil(state.window_start + rule.window - now), False)


def _ceil(seconds: float) -> int:
    # Round tiny float noise away before ceil, so 60.0000000001 reads as 60, not 61.
    return max(0, math.ceil(round(seconds, 6)))
