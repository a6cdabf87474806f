"""The demo API: a deterministic, realistic fake of the scheduling API (Cal.com v2).

- `DemoAccount` (generator.py): the data, lazily generated, up to millions of bookings, in one of
  two `SHAPES` ("standard", or "nested": many attendees, seats and custom answers per booking).
- `DemoApi` (app.py): the HTTP behaviour (auth, versions, paging, filters, rate limit, faults);
  it owns its routes (routes.py), including `/teams` and `/teams/{teamId}/event-types`.
- Response shapes follow the official schemas in ../shared/openapi/ (event_types.py: documented
  event types and teams; bookings.py: 2024-08-13 bookings), plus the legacy fallbacks (shapes.py).
- Bookings filters and keyset reads (query.py, over the maintained orders of orders.py); an account
  that changes while it is read (live.py, the `Faults` live-change knobs).
- `demo_transport` (in-process httpx) and `serve` (a real local socket) deliver it.
- Several accounts behind one server, one key each (accounts.py): `demo_accounts(n, bookings)`
  describes them (`DemoAccountKey`), `DemoApi(accounts=...)` serves them, `write_accounts_file`
  writes the accounts file (`SCHED_ACCOUNTS_FILE`) and its keys (`.env`).

Pure Python: standard library, httpx and orjson only.

The names below are imported from their modules on first use, so importing one module of the
package (`sched_assets.demo.app` for a demo run) does not load the others (the socket server, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sched_assets.lazy import lazy_attributes

if TYPE_CHECKING:
    from sched_assets.demo.accounts import (
        ACCOUNT_ID_STRIDE,
        AccountsFiles,
        DemoAccountKey,
        accounts_env,
        accounts_yaml,
        demo_accounts,
        write_accounts_file,
    )
    from sched_assets.demo.app import DEMO_API_KEY, DemoApi, DemoResponse, Stats
    from sched_assets.demo.faults import Faults
    from sched_assets.demo.generator import AS_OF, BOOKING_ID_BASE, RESOURCES, SHAPES, DemoAccount
    from sched_assets.demo.integrations import DEMO_OAUTH_TOKEN, DEMO_REFRESH_TOKEN, DEMO_SECRETS
    from sched_assets.demo.ratelimit import RateLimit
    from sched_assets.demo.server import DemoServer, serve
    from sched_assets.demo.transport import DEMO_BASE_URL, demo_transport

_MODULES = {
    "ACCOUNT_ID_STRIDE": "accounts",
    "AccountsFiles": "accounts",
    "DemoAccountKey": "accounts",
    "accounts_env": "accounts",
    "accounts_yaml": "accounts",
    "demo_accounts": "accounts",
    "write_accounts_file": "accounts",
    "DEMO_API_KEY": "app",
    "DemoApi": "app",
    "DemoResponse": "app",
    "Stats": "app",
    "Faults": "faults",
    "AS_OF": "generator",
    "BOOKING_ID_BASE": "generator",
    "RESOURCES": "generator",
    "SHAPES": "generator",
    "DemoAccount": "generator",
    "DEMO_OAUTH_TOKEN": "integrations",
    "DEMO_REFRESH_TOKEN": "integrations",
    "DEMO_SECRETS": "integrations",
    "RateLimit": "ratelimit",
    "DemoServer": "server",
    "serve": "server",
    "DEMO_BASE_URL": "transport",
    "demo_transport": "transport",
}

__all__ = [
    "ACCOUNT_ID_STRIDE",
    "AS_OF",
    "BOOKING_ID_BASE",
    "DEMO_API_KEY",
    "DEMO_BASE_URL",
    "DEMO_OAUTH_TOKEN",
    "DEMO_REFRESH_TOKEN",
    "DEMO_SECRETS",
    "RESOURCES",
    "SHAPES",
    "AccountsFiles",
    "DemoAccount",
    "DemoAccountKey",
    "DemoApi",
    "DemoResponse",
    "DemoServer",
    "Faults",
    "RateLimit",
    "Stats",
    "accounts_env",
    "accounts_yaml",
    "demo_accounts",
    "demo_transport",
    "serve",
    "write_accounts_file",
]


__getattr__ = lazy_attributes(__name__, _MODULES)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
