"""Several demo accounts behind one server: one API key each, each with its own data and budget.

`demo_accounts(count, bookings)` describes `count` accounts named `demo-001`, `demo-002`, ... Each
`DemoAccountKey` carries the name (an accounts-file partition key), the environment variable that
holds its key (`SCHED_API_KEY__DEMO_001`), the key itself (public on purpose, like `DEMO_API_KEY`)
and the parameters of its `DemoAccount`, built only when asked (`build_account()`; `DemoApi` does it
on an account's first request), so a thousand accounts cost nothing until they are read.

Everything is derived from the name, deterministically:

- the generator seed (owner and member names, booking times, statuses, uids, answers);
- the number of event types (8 to 12) and of bookings: `bookings` on average, each pair of
  neighbours moved apart by a quarter to all of `spread` (one gets +d, the other -d), so the total
  is exactly `count * bookings` (an odd last account gets `bookings`);
- booking ids: account k owns `BOOKING_ID_BASE + k * ACCOUNT_ID_STRIDE` onwards (demo-001's first
  booking is 1_040_001, demo-002's 2_040_001), disjoint like Cal.com's global ids; an account can
  never grow (`/_demo/add`) into the next one's range.

The small catalog ids (user 4211, teams 91 and 92, event types 5001+, schedules 701-704, credentials)
are the same in every account, as in the single demo account: a join or a key that forgets the
`account` column then mixes accounts visibly instead of silently.

`write_accounts_file(keys, path, base_url)` writes the accounts file (the `SCHED_ACCOUNTS_FILE`
format) and, next to it, a `.env` file with each key and `SCHED_ACCOUNTS_FILE` itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sched_assets.demo.catalog import check_shape
from sched_assets.demo.generator import BOOKING_ID_BASE, DemoAccount

__all__ = [
    "ACCOUNT_ID_STRIDE",
    "AccountsFiles",
    "DemoAccountKey",
    "accounts_env",
    "accounts_yaml",
    "demo_accounts",
    "write_accounts_file",
]

ACCOUNT_ID_STRIDE = 1_000_000  # booking ids per account: account k starts at BOOKING_ID_BASE + k * this
KEY_PREFIX = "cal_demo_public_key_"  # demo keys are public on purpose; never `cal_live_...`
ENV_PREFIX = "SCHED_API_KEY__"
ACCOUNTS_FILE_ENV = "SCHED_ACCOUNTS_FILE"
CANONICAL_EVENT_TYPES = 8
# The accounts file's rule for names (they are partition keys).
ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_PLAIN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+")


@dataclass(frozen=True)
class DemoAccountKey:
    """One demo account of a multi-account server: its name, its key and how to build its data."""

    name: str  # partition key, e.g. "demo-001"
    api_key_env: str  # the variable the accounts file names, e.g. "SCHED_API_KEY__DEMO_001"
    api_key: str  # the key's value, e.g. "cal_demo_public_key_demo_001"
    bookings: int
    event_types: int | None = None
    seed: int = 7
    shape: str = "standard"
    booking_id_base: int = BOOKING_ID_BASE
    max_bookings: int | None = None

    def build_account(self) -> DemoAccount:
        """A fresh `DemoAccount` with this account's data (the same every time)."""
        return DemoAccount(
            self.bookings,
            event_types=self.event_types,
            seed=self.seed,
            shape=self.shape,
            booking_id_base=self.booking_id_base,
            max_bookings=self.max_bookings,
        )

    @property
    def booking_ids(self) -> range:
        """The ids of the account's initial bookings (before any live change)."""
        return range(self.booking_id_base, self.booking_id_base + self.bookings)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts` (stable across runs and Python versions)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _check_name(name: str) -> str:
    if not ACCOUNT_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid account name (1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit)"
        )
    return name


def env_name(name: str) -> str:
    """The variable holding an account's key: `demo-001` -> `SCHED_API_KEY__DEMO_001`."""
    return ENV_PREFIX + _check_name(name).upper().replace("-", "_")


def demo_key(name: str) -> str:
    """The demo key of an account: `demo-001` -> `cal_demo_public_key_demo_001` (public on purpose)."""
    return KEY_PREFIX + _check_name(name).replace("-", "_")


def demo_accounts(
    count: int,
    bookings: int = 2000,
    prefix: str = "demo",
    *,
    seed: int = 7,
    shape: str = "standard",
    event_types: int | None = None,
    spread: float = 0.25,
) -> list[DemoAccountKey]:
    """`count` demo accounts named `{prefix}-001`...; see the module docstring for what differs.

    `bookings` is the mean per account; `spread` (0..1, default 0.25) how far pairs of neighbours
    move apart (0: every account has exactly `bookings`). `event_types` fixes the event type count
    (default: 8 to 12 by account). `seed` varies every account at once; `shape` as `DemoAccount`.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if bookings < 0:
        raise ValueError("bookings must be >= 0")
    if not 0 <= spread <= 1:
        raise ValueError("spread must be between 0 and 1")
    check_shape(shape)
    width = max(3, len(str(count)))
    names = [_check_name(f"{prefix}-{k:0{width}d}") for k in range(1, count + 1)]
    if bookings + round(bookings * spread) > ACCOUNT_ID_STRIDE:
        raise ValueError(
            f"at most {ACCOUNT_ID_STRIDE:,} bookings per account (each owns that many booking ids); "
            f"lower bookings or spread"
        )
    keys: list[DemoAccountKey] = []
    for k, name in enumerate(names, start=1):
        pair = (k + 1) // 2  # accounts 1-2, 3-4, ... move apart by the same amount
        partner_exists = k % 2 == 0 or k < count
        # A quarter to all of `spread`, so neighbours always differ (unless spread or bookings is 0).
        share = 0.25 + 0.75 * _unit(seed, prefix, "pair", pair)
        delta = round(bookings * spread * share) if partner_exists else 0
        count_k = bookings + (delta if k % 2 else -delta)
        ets = event_types
        if ets is None:
            ets = CANONICAL_EVENT_TYPES + int(_unit(seed, name, "event-types") * 5)
        keys.append(
            DemoAccountKey(
                name=name,
                api_key_env=env_name(name),
                api_key=demo_key(name),
                bookings=count_k,
                event_types=ets,
                seed=int(_unit(seed, name, "seed") * 2**31),
                shape=shape,
                booking_id_base=BOOKING_ID_BASE + k * ACCOUNT_ID_STRIDE,
                max_bookings=ACCOUNT_ID_STRIDE,
            )
        )
    return keys


def _yaml_scalar(value: str) -> str:
    # Names and variable names are plain by construction; a URL stays plain when it safely can.
    return value if _PLAIN_URL.fullmatch(value) and " #" not in value else json.dumps(value)


def accounts_yaml(keys: Iterable[DemoAccountKey], base_url: str | None = None) -> str:
    """The accounts file (`SCHED_ACCOUNTS_FILE` format) for `keys`; keys themselves never appear."""
    lines = [
        "# Demo accounts served by `python -m sched_assets.demo --accounts N`.",
        "# Each key is read from the variable named by api_key_env (see the .env file next to this one).",
        "accounts:",
    ]
    for key in keys:
        lines.append(f"  - name: {_check_name(key.name)}")
        lines.append(f"    api_key_env: {key.api_key_env}")
        if base_url:
            lines.append(f"    base_url: {_yaml_scalar(base_url.rstrip('/'))}")
    return "\n".join(lines) + "\n"


def accounts_env(keys: Iterable[DemoAccountKey], accounts_file: str | Path | None = None) -> str:
    """`KEY=value` lines (a `.env` file): each account's key, and `SCHED_ACCOUNTS_FILE` if given."""
    lines = ["# Demo keys (public on purpose). `dagster dev` reads a .env file in its working directory."]
    if accounts_file is not None:
        # Quoted only if needed (a path with spaces): both a shell and python-dotenv read it back.
        lines.append(f"{ACCOUNTS_FILE_ENV}={shlex.quote(str(Path(accounts_file).resolve()))}")
    lines.extend(f"{key.api_key_env}={key.api_key}" for key in keys)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AccountsFiles:
    """Where `write_accounts_file` wrote: the accounts file and its `.env` companion."""

    accounts: Path
    env: Path


def write_accounts_file(
    keys: Sequence[DemoAccountKey], path: str | Path, base_url: str | None = None
) -> AccountsFiles:
    """Write the accounts file at `path` and the keys next to it (`path` with suffix `.env`).

    `base_url` (e.g. the server's `http://127.0.0.1:8000/v2`) goes into every entry; without it the
    entries have none (the sync then uses SCHED_API_BASE_URL, else the public API).
    """
    target = Path(path)
    env = target.with_suffix(".env")
    if env == target:
        raise ValueError(f"{target} ends in .env: name the accounts file e.g. accounts.yaml")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(accounts_yaml(keys, base_url), encoding="utf-8")
    env.write_text(accounts_env(keys, target), encoding="utf-8")
    return AccountsFiles(accounts=target, env=env)
