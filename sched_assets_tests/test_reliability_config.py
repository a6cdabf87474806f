"""Bad configuration is refused before any request, with a message that names the setting to fix.

The demo server runs on a real port throughout and counts every request: it must stay at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi, DemoServer
from sched_assets_tests.reliability_helpers import (
    account_records,
    assert_raw_tables_exact,
    command_env,
    demo_server,
    record_outcome,
    run_main_command,
    sync,
    table_counts,
)


@pytest.fixture(scope="module")
def api() -> DemoApi:
    return DemoApi(DemoAccount(bookings=50))


@pytest.fixture(scope="module")
def server(api: DemoApi) -> Iterator[DemoServer]:
    with demo_server(api) as server:
        yield server


def _regular_file_as_directory(tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be\n")
    return blocker / "sched.duckdb"


def _directory_as_database(tmp_path: Path) -> Path:
    directory = tmp_path / "a-directory.duckdb"
    directory.mkdir()
    return directory


@dataclass(frozen=True)
class BadConfig:
    """One mistake: resource settings, the URL to give the client, the database path, expected words."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    url: Callable[[DemoServer], str] = lambda server: server.url
    database: Callable[[Path], Path] = lambda tmp_path: tmp_path / "sched.duckdb"
    says: tuple[str, ...] = ()


BAD_CONFIGS = [
    BadConfig(
        "base URL without a key",
        {"api_key": None},
        says=("SCHED_API_BASE_URL is set", "SCHED_API_KEY is not", "unset SCHED_API_BASE_URL"),
    ),
    BadConfig(
        "URL without a scheme (127.0.0.1:PORT/v2)",
        url=lambda server: f"{server.host}:{server.port}/v2",
        says=("is not an http(s) URL", "SCHED_API_BASE_URL", "https://api.cal.com/v2"),
    ),
    BadConfig(
        "URL that is not a URL",
        url=lambda server: "api.cal.com v2",
        says=("is not an http(s) URL", "SCHED_API_BASE_URL"),
    ),
    BadConfig("page_size 0", {"page_size": 0}, says=("page_size must be between 1 and 250", "got 0")),
    BadConfig("page_size 251", {"page_size": 251}, says=("page_size must be between 1 and 250", "got 251")),
    BadConfig(
        "DuckDB path below a regular file",
        database=_regular_file_as_directory,
        says=("cannot create/write DuckDB database", "SCHED_DUCKDB_PATH"),
    ),
    BadConfig(
        "DuckDB path is a directory",
        database=_directory_as_database,
        says=("it is a directory", "SCHED_DUCKDB_PATH"),
    ),
]


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=lambda case: case.name)
def test_bad_configuration_is_refused_before_any_request(
    case: BadConfig,
    api: DemoApi,
    server: DemoServer,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run fails in seconds with a message naming the setting, and the API never hears of it."""
    # The resource falls back to these at run time: a developer's shell must not fill in the blanks.
    monkeypatch.delenv("SCHED_API_KEY", raising=False)
    monkeypatch.delenv("SCHED_API_BASE_URL", raising=False)
    database = case.database(tmp_path)
    run = sync(api, case.url(server), database, instance, **case.settings)
    assert not run.success
    message = run.failure()
    for phrase in case.says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert api.stats.requests == 0, api.stats.snapshot()
    assert run.seconds < 10
    if database.parent.is_dir() and not database.is_dir():
        assert not database.exists() or table_counts(database) == {}
    record_outcome(
        f"bad configuration: {case.name}",
        outcome="refused before any request",
        tables="none written",
        requests=0,
        retries=0,
        throttled_429=0,
        seconds=round(run.seconds, 1),
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_base_url_without_key_is_a_configuration_error(
    api: DemoApi, server: DemoServer, tmp_path: Path
) -> None:
    """Through the environment, as users set it: SCHED_API_BASE_URL without SCHED_API_KEY is not demo mode."""
    database = tmp_path / "sched.duckdb"
    api.reset_stats()
    run = run_main_command(command_env(server.url, None, database, tmp_path / "dagster_home"))
    assert run.returncode != 0
    assert "SCHED_API_KEY is not" in run.output
    assert "DEMO MODE" not in run.output
    assert api.stats.requests == 0
    assert not database.exists() or table_counts(database) == {}


def test_launchpad_resource_override_never_switches_to_demo_mode(
    api: DemoApi, server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SCHED_API_KEY and SCHED_API_BASE_URL set, changing one `sched_api` setting in the run config
    must either sync the configured API or fail clearly; never sync the demo account into that database.

    (Dagster replaces a resource's whole config with the run config's, dropping the EnvVar-bound key and
    URL; the resource falls back to the environment at run time.)"""
    from sched_assets.definitions import defs

    database = tmp_path / "sched.duckdb"
    monkeypatch.setenv("SCHED_API_BASE_URL", server.url)
    monkeypatch.setenv("SCHED_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("SCHED_DUCKDB_PATH", str(database))
    api.reset_stats()
    run_config = {"resources": {"sched_api": {"config": {"page_size": 250}}}}
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = (
            defs()
            .resolve_job_def("sync_everything")
            .execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
        )
        messages = [entry.user_message or "" for entry in instance.all_logs(result.run_id)]
    assert not any("DEMO MODE" in message for message in messages)
    if result.success:
        assert api.stats.requests > 0
        assert_raw_tables_exact(database, account_records(api.account))
    else:
        assert not database.exists() or "raw.bookings" not in table_counts(database)
