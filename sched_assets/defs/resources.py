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
    from sched_assets.api.client import ClientConfig, SchedApiClient

DEFAULT_BASE_URL = "https://api.cal.com/v2"
DEFAULT_DATABASE = "data/sched.duckdb"
DEMO_DATABASE = "data/demo.duckdb"


def demo_mode_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """No key and no base URL: the built-in demo account (docs/demo.md)."""
    return not environ.get("SCHED_API_KEY") and not environ.get("SCHED_API_BASE_URL")


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
        parts = urlsplit(self.resolved_base_url or DEFAULT_BASE_URL)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))

    def client_config(self) -> ClientConfig:
        """Validated client settings (built once per run); raises ConfigError before any request is sent."""
        from sched_assets.api.client import ClientConfig

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
        if self.is_demo:
            from sched_assets.demo.app import DemoApi
            from sched_assets.demo.generator import DemoAccount
            from sched_assets.demo.transport import demo_transport

            transport = demo_transport(
                DemoApi(DemoAccount(bookings=self.demo_bookings, shape=self.demo_shape))
            )
        return SchedApiClient(config, transport=transport, logger=logger)
