"""Dagster's Postgres storage (`storage: postgres`) with the event log on a kept connection.

dagster-postgres opens a new Postgres connection for every event a run stores (SQLAlchemy `NullPool`,
so that idle processes hold none). A run of many accounts stores ~30 events per account: with 25
accounts a run opened ~750 connections, each a new server backend and authentication, 5.6 s of a ~75 s
run under py-spy. Here each process keeps one event-log connection (and opens up to `MAX_OVERFLOW` more
while threads log at once), as dagster-webserver does for itself, checked with a ping before each use.

Used by `deploy/dagster.yaml` (`storage: custom: {module: sched_assets.instance_storage, class:
PooledPostgresStorage, config: <the storage: postgres: config>}`). Only instance loading imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

if TYPE_CHECKING:
    from dagster._serdes import ConfigurableClassData
    from dagster_postgres.auth import PgTokenProvider

POOL_RECYCLE_SECONDS = 3600  # reopen the kept connection hourly (server-side idle limits, failovers)
MAX_OVERFLOW = 8  # extra connections while more threads store events at once (closed after use)


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose event log keeps one connection per process (see the module)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: PgTokenProvider | None = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        # What `optimize_for_webserver` does to this engine, plus a ping at checkout: a kept connection
        # dies with a Postgres restart, and the next event must get a new one, not the error.
        self.event_log_storage._engine = create_pg_engine(  # type: ignore[attr-defined]
            postgres_url,
            token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=1,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,
            pool_pre_ping=True,
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
