"""Secrets never leave the API client: not the API key, not the conferencing OAuth tokens.

A full sync with a recognisable live-looking key (built at runtime, so no key-shaped literal is
committed), then every place a secret could end up is scanned: the run's stdout/stderr and Python
logs, the Dagster event log and run storage (every byte under DAGSTER_HOME), each asset's
materialization metadata, the run config, and the DuckDB file (its bytes and every cell as text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import orjson
import pytest

from sched_assets.demo import DEMO_API_KEY, DEMO_SECRETS, DemoAccount, DemoApi
from sched_assets_tests.reliability_helpers import (
    account_records,
    api_get,
    assert_raw_tables_exact,
    command_env,
    demo_server,
    record_outcome,
    run_main_command,
    scan_files,
    scan_tables,
    secret_hits,
)

LIVE_KEY = "cal_live_" + "Z" * 24
SECRETS: tuple[str, ...] = (LIVE_KEY, *DEMO_SECRETS)


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(bookings=300)


def assert_api_serves_the_tokens(api: DemoApi) -> None:
    """Guard against a vacuous scan: the demo API does send the OAuth tokens (conferencing `key`)."""
    body = orjson.dumps(api_get(api, "conferencing", key=api.api_key))
    assert set(secret_hits(body, DEMO_SECRETS)) == set(DEMO_SECRETS)


def instance_texts(instance: dg.DagsterInstance) -> dict[str, str]:
    """Run configs, tags, event-log messages and materialization/check metadata of every run, as text."""
    texts: dict[str, str] = {}
    for run in instance.get_runs():
        texts[f"run {run.run_id} config"] = repr(run.run_config)
        texts[f"run {run.run_id} tags"] = repr(run.tags)
        logs = instance.all_logs(run.run_id)
        texts[f"run {run.run_id} event log"] = "\n".join(repr(entry) for entry in logs)
    for key in instance.get_asset_keys():
        event = instance.get_latest_materialization_event(key)
        if event is not None and event.asset_materialization is not None:
            texts[f"{key.to_user_string()} metadata"] = repr(event.asset_materialization.metadata)
    return texts


@contextmanager
def real_job_run(
    monkeypatch: pytest.MonkeyPatch, url: str, key: str, database: Path, home: Path
) -> Iterator[tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]]:
    """`sync_everything` of the real definitions, configured through the environment like the CLI."""
    from sched_assets.definitions import defs

    monkeypatch.setenv("SCHED_API_BASE_URL", url)
    monkeypatch.setenv("SCHED_API_KEY", key)
    monkeypatch.setenv("SCHED_DUCKDB_PATH", str(database))
    home.mkdir(exist_ok=True)
    job = defs().resolve_job_def("sync_everything")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield job.execute_in_process(instance=instance, raise_on_error=False), instance


def error_texts(result: dg.ExecuteInProcessResult) -> str:
    """Every error of the run in full: message, stack and the chain of causes."""
    parts: list[str] = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            parts.append(error.to_string())
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_sync_leaks_no_secret(account: DemoAccount, tmp_path: Path) -> None:
    """The main command as a subprocess: output, DAGSTER_HOME, run records and DuckDB hold no secret."""
    api = DemoApi(account, api_key=LIVE_KEY)
    assert_api_serves_the_tokens(api)
    database = tmp_path / "sched.duckdb"
    home = tmp_path / "dagster_home"
    with demo_server(api) as server:
        api.reset_stats()
        run = run_main_command(command_env(server.url, LIVE_KEY, database, home))
    assert run.returncode == 0, run.stderr[-3000:]
    assert api.stats.by_status[200] == api.stats.requests > 0  # the key really was used and accepted
    assert_raw_tables_exact(database, account_records(account))

    hits: dict[str, list[str]] = {}
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        if secret_hits(text, SECRETS):
            hits[name] = secret_hits(text, SECRETS)
    hits.update(scan_files(home, SECRETS))
    for path in tmp_path.glob("sched.duckdb*"):
        hits.update(scan_files(path, SECRETS))
    hits.update({cell: ["table"] for cell in scan_tables(database, SECRETS)})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        texts = instance_texts(instance)
    assert any("metadata" in name for name in texts) and any("event log" in name for name in texts)
    hits.update(
        {name: secret_hits(text, SECRETS) for name, text in texts.items() if secret_hits(text, SECRETS)}
    )
    assert hits == {}
    record_outcome(
        "secrets: CLI full sync with a cal_live_ key; scan output, DAGSTER_HOME, metadata, run config, DuckDB",
        outcome="zero hits",
        tables="exact",
        requests=api.stats.requests,
        retries=0,
        throttled_429=0,
        seconds=round(run.seconds, 1),
    )


def test_in_process_sync_leaks_no_secret(
    account: DemoAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The real `sync_everything` job in-process: Python logs, captured output and records are clean."""
    caplog.set_level(logging.DEBUG)
    api = DemoApi(account, api_key=LIVE_KEY)
    database = tmp_path / "sched.duckdb"
    home = tmp_path / "dagster_home"
    with (
        demo_server(api) as server,
        real_job_run(monkeypatch, server.url, LIVE_KEY, database, home) as (result, instance),
    ):
        assert result.success
        texts = instance_texts(instance)
    captured = capfd.readouterr()
    texts.update(caplog=caplog.text, stdout=captured.out, stderr=captured.err)
    assert caplog.text and captured.err  # something was logged, so the scan means something
    hits = {name: secret_hits(text, SECRETS) for name, text in texts.items() if secret_hits(text, SECRETS)}
    hits.update(scan_files(home, SECRETS))
    hits.update(scan_files(database, SECRETS))
    hits.update({cell: ["table"] for cell in scan_tables(database, SECRETS)})
    assert hits == {}


def test_rejected_key_is_not_in_any_error_or_log(
    account: DemoAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A 401 run: the exception messages (with stacks and causes), logs and records never show the key."""
    caplog.set_level(logging.DEBUG)
    api = DemoApi(account, api_key=DEMO_API_KEY)  # the live-looking key is wrong here: 401
    database = tmp_path / "sched.duckdb"
    home = tmp_path / "dagster_home"
    with (
        demo_server(api) as server,
        real_job_run(monkeypatch, server.url, LIVE_KEY, database, home) as (result, instance),
    ):
        assert not result.success
        errors = error_texts(result)
        texts = instance_texts(instance)
    assert "HTTP 401" in errors and "SCHED_API_KEY" in errors
    captured = capfd.readouterr()
    texts.update(errors=errors, caplog=caplog.text, stdout=captured.out, stderr=captured.err)
    hits = {name: secret_hits(text, SECRETS) for name, text in texts.items() if secret_hits(text, SECRETS)}
    hits.update(scan_files(home, SECRETS))
    assert hits == {}
    assert set(api.stats.by_status) == {401}


def test_spill_files_never_hold_a_secret(
    account: DemoAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages reach disk (JSON lines, then typed Parquet parts) only after the client stripped the OAuth
    tokens: every spill file is scanned while the run still has it, before each batch is typed and
    after each resource's last part is written. The spill directory is gone when the run ends."""
    from sched_assets.frames.spill import RecordSpill

    scanned: dict[str, int] = {}  # resource -> spill bytes scanned
    hits: dict[str, list[str]] = {}
    directories: set[Path] = set()

    def scan(spill: RecordSpill) -> None:
        directory = spill._directory
        directories.add(directory)
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            data = path.read_bytes()
            scanned[spill.spec.name] = scanned.get(spill.spec.name, 0) + len(data)
            if secret_hits(data, SECRETS):
                hits[str(path)] = secret_hits(data, SECRETS)

    submit, finish = RecordSpill._submit, RecordSpill.finish

    def scanning_submit(self: RecordSpill) -> None:
        if self._file is not None:
            self._file.flush()
        scan(self)
        submit(self)

    def scanning_finish(self: RecordSpill) -> list[Path]:
        paths = finish(self)
        scan(self)
        return paths

    monkeypatch.setattr(RecordSpill, "_submit", scanning_submit)
    monkeypatch.setattr(RecordSpill, "finish", scanning_finish)
    api = DemoApi(account, api_key=LIVE_KEY)
    assert_api_serves_the_tokens(api)
    with (
        demo_server(api) as server,
        real_job_run(monkeypatch, server.url, LIVE_KEY, tmp_path / "sched.duckdb", tmp_path / "home") as (
            result,
            _,
        ),
    ):
        assert result.success
    assert scanned.get("conferencing", 0) > 0 and scanned.get("bookings", 0) > 0  # not a vacuous scan
    assert hits == {}
    assert directories and not any(directory.exists() for directory in directories)
