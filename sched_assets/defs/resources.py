"""The API resource: configuration in the launchpad, a client per run, demo mode when nothing is set.

The client (httpx, orjson) and the demo API are imported when a run builds its client, not when the
definitions load.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from pydantic import Field

from sched_assets.api.errors import ConfigError
from sched_assets.api.specs import DEFAULT_PAGE_SIZE

if TYPE_CHECKING:
    from sched_assets.accounts import Account, AccountRegistry
    from sched_assets.api.client import ClientConfig, SchedApiClient

DEFAULT_BASE_URL = "https://api.cal.com/v2"
DEFAULT_DATABASE = "data/sched.duckdb"
DEMO_DATABASE = "data/demo.duckdb"


def demo_mode_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """No key, no base URL and no accounts file: the built-in demo account (docs/demo.md)."""
    return not any(
        environ.get(name) for name in ("SCHED_API_KEY", "SCHED_API_BASE_URL", "SCHED_ACCOUNTS_FILE")
    )


def database_path_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """SCHED_DUCKDB_PATH, else a separate file for demo data so it never mixes with real rows."""
    return environ.get("SCHED_DUCKDB_PATH") or (
        DEMO_DATABASE if demo_mode_from_env(environ) else DEFAULT_DATABASE
    )


class SchedApiResource(dg.ConfigurableResource):
    """Connection to the scheduling API (Cal.com v2). With no key and no base URL it serves a demo account."""

    base_url: str | None = Field(
        default=None, description="API root including the version prefix; unset means https://api.cal.com/v2."
    )
    api_key: str | None = Field(default=None, description="Bearer API key; set it with SCHED_API_KEY.")
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, description="Bookings per page (`take`), 1..250.")
    max_retries: int = Field(
        default=3, description="Retries per request for 429, 5xx, network errors and bad bodies."
    )
    backoff_factor: float = Field(
        default=2.0, description="Exponential backoff: factor * 2**attempt seconds, plus jitter."
    )
    max_backoff_seconds: float = Field(default=60.0, description="Upper bound of one backoff wait.")
    rate_limit_wait_seconds: float = Field(
        default=60.0, description="Wait after a 429 that names no reset time (the API's block lasts 60 s)."
    )
    max_rate_limit_wait_seconds: float = Field(
        default=180.0, description="Upper bound of any rate-limit wait."
    )
    rate_limit_reserve: int = Field(
        default=1, description="Requests of each rate-limit window left unused, as a safety margin."
    )
    connect_timeout_seconds: float = Field(default=10.0, description="TCP/TLS connect timeout.")
    read_timeout_seconds: float = Field(default=60.0, description="Timeout waiting for a response.")
    concurrency: int = Field(
        default=4, description="Bookings pages fetched at once (still paced by the rate limit)."
    )
    demo_bookings: int = Field(
        default=2000, description="Size of the built-in demo account (demo mode only)."
    )
    demo_shape: str = Field(
        default="standard",
        description="Shape of the built-in demo account (demo mode only): `standard`, or `nested` (many "
        "attendees, seated bookings, custom booking fields).",
    )
    accounts_file: str | None = Field(
        default=None,
        description="Many-accounts mode: the accounts file (SCHED_ACCOUNTS_FILE). Each account's key comes "
        "from the environment variable the file names for it; api_key and demo mode do not apply.",
    )
    account_concurrency: int = Field(
        default=8,
        description="Many-accounts mode: accounts synced at once inside one run (a run of a backfill can "
        "cover several accounts); each has its own client and rate-limit budget.",
    )
    account_lock_timeout_seconds: float = Field(
        default=900.0,
        description="Many-accounts mode: how long an account's sync waits for another run that is "
        "syncing the same API key before it fails.",
    )

    @property
    def resolved_api_key(self) -> str | None:
        """The configured key, else SCHED_API_KEY read at run time.

        Run config for this resource replaces its whole config, so a launchpad edit of, say,
        `page_size` drops the env-bound key; falling back to the environment keeps such a run
        pointed at the real account instead of silently switching to demo mode.
        """
        return self.api_key or os.environ.get("SCHED_API_KEY") or None

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("SCHED_API_BASE_URL") or None

    @property
    def is_demo(self) -> bool:
        return not self.resolved_api_key and not self.resolved_base_url

    @property
    def source(self) -> str:
        """What the metadata calls the source: `demo` or the API root (any credentials in it removed)."""
        if self.is_demo:
            return "demo"
        return _without_credentials(self.resolved_base_url or DEFAULT_BASE_URL)

    def account_registry(self) -> AccountRegistry:
        """The accounts file as it is now (a run reads it again, so it sees the current entries)."""
        from sched_assets.accounts import ACCOUNTS_FILE_ENV, load_accounts

        if not self.accounts_file:
            raise ConfigError(f"no accounts file: set {ACCOUNTS_FILE_ENV} to use account partitions.")
        return load_accounts(self.accounts_file)

    def account_base_url(self, account: Account) -> str:
        return account.base_url or self.resolved_base_url or DEFAULT_BASE_URL

    def account_source(self, account: Account) -> str:
        return _without_credentials(self.account_base_url(account))

    def account_client_config(self, account: Account) -> ClientConfig:
        """Client settings for one account: its own key (from its variable) and API root; raises before any request."""
        from sched_assets.accounts import AccountsFileError

        try:
            api_key = account.api_key()
        except AccountsFileError as exc:
            raise ConfigError(str(exc)) from None
        return self._client_config(self.account_base_url(account), api_key)

    def client_config(self) -> ClientConfig:
        """Validated client settings (built once per run); raises ConfigError before any request is sent."""
        if self.demo_bookings < 0:
            raise ConfigError(f"demo_bookings must be 0 or more; got {self.demo_bookings}.")
        if self.is_demo:
            from sched_assets.demo.app import DEMO_API_KEY
            from sched_assets.demo.catalog import SHAPES
            from sched_assets.demo.transport import DEMO_BASE_URL

            if self.demo_shape not in SHAPES:
                raise ConfigError(f"demo_shape must be one of {', '.join(SHAPES)}; got {self.demo_shape!r}.")

            base_url, api_key = DEMO_BASE_URL, DEMO_API_KEY
        else:
            api_key = self.resolved_api_key
            if not api_key:
                raise ConfigError(
                    f"SCHED_API_BASE_URL is set ({self.source}) but SCHED_API_KEY is not. Set SCHED_API_KEY to "
                    "your API key, or unset SCHED_API_BASE_URL to run against the built-in demo account."
                )
            base_url = self.resolved_base_url or DEFAULT_BASE_URL
        return self._client_config(base_url, api_key)

    def _client_config(self, base_url: str, api_key: str) -> ClientConfig:
        from sched_assets.api.client import ClientConfig

        return ClientConfig(
            base_url=base_url,
            api_key=api_key,
            page_size=self.page_size,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            max_backoff_seconds=self.max_backoff_seconds,
            rate_limit_wait_seconds=self.rate_limit_wait_seconds,
            max_rate_limit_wait_seconds=self.max_rate_limit_wait_seconds,
            rate_limit_reserve=self.rate_limit_reserve,
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            concurrency=self.concurrency,
        )

    def build_client(self, config: ClientConfig, logger: Any | None = None) -> SchedApiClient:
        """A client for one run, from `client_config()`. In demo mode it talks to the demo API in-process."""
        from sched_assets.api.client import SchedApiClient

        transport = None
        if self.is_demo and not self.accounts_file:
            from sched_assets.demo.app import DemoApi
            from sched_assets.demo.generator import DemoAccount
            from sched_assets.demo.transport import demo_transport

            transport = demo_transport(
                DemoApi(DemoAccount(bookings=self.demo_bookings, shape=self.demo_shape))
            )
        # Views: the sync spills pages as they came, without building their records in Python.
        return SchedApiClient(config, transport=transport, logger=logger, record_views=True)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
