"""The demo API serving several accounts, one key each: own data, own budget, own faults; the files.

Over a real local socket (like test_demo_server.py): two keys see different data and their own
rate-limit window, an unknown key gets 401, a non-default account still answers in the official
shapes (../shared/openapi/), and the accounts file and its .env parse back.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from sched_assets.demo import (
    ACCOUNT_ID_STRIDE,
    BOOKING_ID_BASE,
    DEMO_API_KEY,
    DemoAccount,
    DemoAccountKey,
    DemoApi,
    DemoServer,
    Faults,
    RateLimit,
    demo_accounts,
    serve,
    write_accounts_file,
)
from sched_assets.demo.__main__ import main as demo_main
from sched_assets_tests import openapi
from sched_assets_tests.demo_helpers import V_BOOKINGS, V_EVENT_TYPES, V_SCHEDULES

ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # the accounts file's rule (partition keys)
VERSIONS = {"bookings": V_BOOKINGS, "event_types": V_EVENT_TYPES, "schedules": V_SCHEDULES}


@pytest.fixture(scope="module")
def keys() -> list[DemoAccountKey]:
    return demo_accounts(3, 300)


@pytest.fixture
def server(keys: list[DemoAccountKey]) -> Iterator[DemoServer]:
    with serve(DemoApi(accounts=keys)) as running:
        yield running


def client(server: DemoServer, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)


def headers_for(resource: str) -> dict[str, str]:
    """The version header of a resource (without the key: the client sends its own)."""
    return {k: v for k, v in VERSIONS.get(resource, {}).items() if k != "Authorization"}


def all_bookings(c: httpx.Client, take: int = 100) -> list[dict]:
    records, skip = [], 0
    while True:
        response = c.get("/bookings", params={"take": take, "skip": skip}, headers=headers_for("bookings"))
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        records += body["data"]
        if not body["pagination"]["hasNextPage"]:
            return records
        skip += body["pagination"]["returnedItems"]


# ---- the accounts themselves -----------------------------------------------------------------------


def test_demo_accounts_are_named_keyed_and_deterministic(keys: list[DemoAccountKey]) -> None:
    assert [k.name for k in keys] == ["demo-001", "demo-002", "demo-003"]
    assert [k.api_key_env for k in keys] == [f"SCHED_API_KEY__DEMO_00{i}" for i in (1, 2, 3)]
    assert keys[0].api_key == "cal_demo_public_key_demo_001" and "live" not in keys[0].api_key
    assert all(ACCOUNT_NAME.fullmatch(k.name) for k in keys)
    assert len({k.api_key for k in keys}) == len({k.seed for k in keys}) == 3
    assert demo_accounts(3, 300) == keys  # a function of its arguments only
    assert demo_accounts(30, 300)[:2] == keys[:2]  # an account does not depend on how many there are
    # Counts differ between neighbours, the total stays count * bookings; ids are disjoint ranges.
    assert keys[0].bookings != keys[1].bookings and keys[0].bookings + keys[1].bookings == 600
    assert sum(k.bookings for k in demo_accounts(200, 2000)) == 400_000
    assert [k.booking_ids.start for k in keys] == [BOOKING_ID_BASE + i * ACCOUNT_ID_STRIDE for i in (1, 2, 3)]
    assert all(k.booking_ids.stop <= n.booking_ids.start for k, n in itertools.pairwise(keys))
    assert [k.bookings for k in demo_accounts(3, 300, spread=0)] == [300, 300, 300]
    # The same key builds the same data every time.
    first, again = keys[1].build_account(), keys[1].build_account()
    assert [first.record_json(s) for s in range(0, keys[1].bookings, 7)] == [
        again.record_json(s) for s in range(0, keys[1].bookings, 7)
    ]
    with pytest.raises(ValueError, match="not a valid account name"):
        demo_accounts(2, 10, prefix="Acme")
    with pytest.raises(ValueError, match="bookings per account"):
        demo_accounts(2, ACCOUNT_ID_STRIDE)


def test_an_account_cannot_grow_into_the_next_ones_ids() -> None:
    account = DemoAccount(5, booking_id_base=2_040_001, max_bookings=8)
    assert account.add(3) == [2_040_006, 2_040_007, 2_040_008]
    with pytest.raises(ValueError, match="at most 8"):
        account.add(1)


def test_api_arguments_are_checked(keys: list[DemoAccountKey]) -> None:
    with pytest.raises(ValueError, match="either one"):
        DemoApi()
    with pytest.raises(ValueError, match="either one"):
        DemoApi(DemoAccount(5), accounts=keys)
    with pytest.raises(ValueError, match="used twice"):
        DemoApi(accounts=[keys[0], keys[0]])
    api = DemoApi(accounts=keys)
    with pytest.raises(AttributeError, match="account_for"):
        _ = api.account
    assert api.account_names == ["demo-001", "demo-002", "demo-003"]
    assert api.account_key("demo-002") == keys[1].api_key


# ---- over a real socket ----------------------------------------------------------------------------


def test_two_keys_see_their_own_data(server: DemoServer, keys: list[DemoAccountKey]) -> None:
    seen = {}
    for key in keys[:2]:
        with client(server, key.api_key) as c:
            me = c.get("/me").json()["data"]
            own = c.get("/event-types", headers=headers_for("event_types")).json()["data"]
            bookings = all_bookings(c)
            seen[key.name] = (me["name"], len(own), bookings)
            assert len(bookings) == key.bookings
            assert [b["id"] for b in bookings] == list(key.booking_ids)
    (name_a, ets_a, bookings_a), (name_b, ets_b, bookings_b) = seen.values()
    assert name_a != name_b  # different people
    assert ets_a != ets_b  # different counts (12 and 8 event types, 5 and 4 of them personal)
    assert len(bookings_a) != len(bookings_b)
    assert not {b["id"] for b in bookings_a} & {b["id"] for b in bookings_b}
    assert not {b["uid"] for b in bookings_a} & {b["uid"] for b in bookings_b}
    assert [b["start"] for b in bookings_a[:20]] != [b["start"] for b in bookings_b[:20]]
    stats = httpx.get(server.base_url + "/_demo/stats").json()
    pages = [-(-k.bookings // 100) for k in keys[:2]]  # /me, /event-types, then the pages
    assert [stats["accounts"][k.name]["requests"] for k in keys[:2]] == [2 + n for n in pages]
    assert stats["accounts"]["demo-003"]["requests"] == 0 and "demo-003" not in stats["resident"]


def test_unknown_keys_get_401(server: DemoServer) -> None:
    for key in ("cal_demo_public_key_demo_999", DEMO_API_KEY, "cal_live_nope"):
        with client(server, key) as c:
            response = c.get("/me")
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "UnauthorizedException"
    assert httpx.get(server.url + "/bookings", timeout=10).status_code == 401  # no key at all


def test_each_key_has_its_own_rate_limit_budget(keys: list[DemoAccountKey]) -> None:
    api = DemoApi(accounts=keys, rate_limit=RateLimit(limit=3, window=60, block=60))
    admin = "/_demo"
    with (
        serve(api) as running,
        client(running, keys[0].api_key) as a,
        client(running, keys[1].api_key) as b,
        httpx.Client(base_url=running.base_url) as plain,
    ):
        assert [a.get("/me").status_code for _ in range(5)] == [200, 200, 200, 429, 429]
        assert [b.get("/me").status_code for _ in range(3)] == [200, 200, 200]  # untouched by a's 429s
        assert b.get("/me").headers["X-RateLimit-Remaining-Default"] == "0"
        assert api.account_stats("demo-001").throttled == 2
        assert api.account_stats("demo-002").throttled == 1  # its own 4th request, not a's
        plain.post(f"{admin}/reset-limits", params={"account": "demo-001"}).raise_for_status()
        assert a.get("/me").status_code == 200 and b.get("/me").status_code == 429
        # One account's rule can differ; the others keep theirs.
        plain.post(f"{admin}/rate-limit", params={"account": "demo-003", "value": "1/60/60"})
        with client(running, keys[2].api_key) as c:
            assert [c.get("/me").status_code for _ in range(2)] == [200, 429]
        stats = plain.get(f"{admin}/stats").json()
        assert stats["throttled"] == 5
        assert {n: s["throttled"] for n, s in stats["accounts"].items()} == {
            "demo-001": 2,
            "demo-002": 2,
            "demo-003": 1,
        }


def test_faults_and_changes_stay_with_their_account(server: DemoServer, keys: list[DemoAccountKey]) -> None:
    admin = server.base_url + "/_demo"
    with client(server, keys[0].api_key) as a, client(server, keys[1].api_key) as b, httpx.Client() as plain:
        failing = {"account": "demo-001", "fail_status": "bookings=503"}
        plain.post(f"{admin}/faults", params=failing).raise_for_status()
        assert a.get("/bookings").status_code == 503 and b.get("/bookings").status_code == 200
        plain.post(f"{admin}/faults", params={"account": "demo-001"}).raise_for_status()
        assert a.get("/bookings").status_code == 200
        # Mutations need the account and change only it.
        assert plain.post(f"{admin}/touch", params={"fraction": 0.05}).status_code == 400
        touched = plain.post(f"{admin}/touch", params={"account": "demo-002", "fraction": 0.05}).json()
        assert touched["touched"] == round(keys[1].bookings * 0.05)
        assert all(i in keys[1].booking_ids for i in touched["ids"])
        since = {"afterUpdatedAt": "2026-11-01T00:00:01Z", "take": 250}
        changed_b = b.get("/bookings", params=since, headers=headers_for("bookings")).json()["data"]
        assert sorted(x["id"] for x in changed_b) == touched["ids"]
        assert a.get("/bookings", params=since, headers=headers_for("bookings")).json()["data"] == []
        stats_b = plain.get(f"{admin}/stats", params={"account": "demo-002"}).json()
        assert stats_b["generation"] == 1 and stats_b["bookings"] == keys[1].bookings
        assert plain.get(f"{admin}/stats", params={"account": "nope"}).status_code == 400
        listed = plain.get(f"{admin}/accounts").json()["accounts"]
        assert [(x["name"], x["api_key"]) for x in listed] == [(k.name, k.api_key) for k in keys]


def test_a_non_default_account_answers_in_the_documented_shapes(
    server: DemoServer, keys: list[DemoAccountKey]
) -> None:
    """demo-003: not the default account, with 10 event types (two beyond the canonical eight)."""
    with client(server, keys[2].api_key) as c:
        teams = c.get("/teams").json()
        openapi.assert_valid("teams", teams)
        for team in teams["data"]:
            openapi.assert_valid("team_event_types", c.get(f"/teams/{team['id']}/event-types").json())
        for name, path in [
            ("event_types", "/event-types"),
            ("me", "/me"),
            ("schedules", "/schedules"),
            ("calendars", "/calendars"),
            ("conferencing", "/conferencing"),
        ]:
            response = c.get(path, headers=headers_for(name))
            assert response.status_code == 200, path
            openapi.assert_valid(name, response.json())
        for query in (
            {},
            {"status": "cancelled"},
            {"afterUpdatedAt": "2026-06-01T00:00:00Z", "sortUpdatedAt": "asc"},
        ):
            skip = 0
            while True:
                params = {"take": 120, "skip": skip, **query}
                body = c.get("/bookings", params=params, headers=headers_for("bookings")).json()
                openapi.assert_valid("bookings", body)
                if not body["pagination"]["hasNextPage"]:
                    break
                skip += body["pagination"]["returnedItems"]


# ---- laziness --------------------------------------------------------------------------------------


def test_accounts_are_built_on_demand_and_unchanged_ones_dropped() -> None:
    keys = demo_accounts(4, 60)
    api = DemoApi(accounts=keys, resident_accounts=2)
    assert api.resident() == []

    def page(key: DemoAccountKey) -> bytes:
        headers = {"Authorization": f"Bearer {key.api_key}", **headers_for("bookings")}
        response = api.handle("GET", "/v2/bookings", {"take": "250"}, headers)
        assert response.status == 200
        return response.body

    first = page(keys[0])
    page(keys[1])
    api.account_for("demo-002", pin=False).touch([keys[1].booking_ids[0]])  # changed: never dropped
    page(keys[2])
    page(keys[3])
    # Two at most stay in use: unchanged demo-001 was dropped, changed demo-002 kept its data.
    assert api.resident() == ["demo-002", "demo-003", "demo-004"]
    assert page(keys[0]) == first  # rebuilt byte-identical
    assert page(keys[1]).count(b'"updatedAt":"2026-11-01T00:01:00.000Z"') == 1


def test_a_thousand_accounts_start_at_once() -> None:
    started = time.perf_counter()
    api = DemoApi(accounts=demo_accounts(1000, 2000))
    assert time.perf_counter() - started < 5  # nothing is generated until a key is used
    assert api.resident() == []


# ---- the accounts file, the .env file, the CLI ---------------------------------------------------------


def parse_env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_accounts_file_and_env_parse_back(tmp_path: Path, keys: list[DemoAccountKey]) -> None:
    files = write_accounts_file(
        keys, tmp_path / "conf" / "accounts.yaml", base_url="http://127.0.0.1:8000/v2/"
    )
    assert files.env == tmp_path / "conf" / "accounts.env"
    document = yaml.safe_load(files.accounts.read_text())
    assert document == {
        "accounts": [
            {"name": k.name, "api_key_env": k.api_key_env, "base_url": "http://127.0.0.1:8000/v2"}
            for k in keys
        ]
    }
    assert not any(k.api_key in files.accounts.read_text() for k in keys)  # keys only in the .env
    env = parse_env(files.env)
    assert env == {
        "SCHED_ACCOUNTS_FILE": str(files.accounts.resolve()),
        **{k.api_key_env: k.api_key for k in keys},
    }

    bare = write_accounts_file(keys[:1], tmp_path / "bare.yaml")
    assert yaml.safe_load(bare.accounts.read_text()) == {
        "accounts": [{"name": "demo-001", "api_key_env": "SCHED_API_KEY__DEMO_001"}]
    }
    with pytest.raises(ValueError, match=r"\.env"):
        write_accounts_file(keys, tmp_path / "accounts.env")


def test_the_project_reads_the_written_accounts_file(tmp_path: Path, keys: list[DemoAccountKey]) -> None:
    registry = pytest.importorskip("sched_assets.accounts.registry")
    files = write_accounts_file(keys, tmp_path / "accounts.yaml", base_url="http://127.0.0.1:8123/v2")
    loaded = registry.load_accounts(files.accounts)
    assert loaded.names == [k.name for k in keys]
    env = parse_env(files.env)
    assert [a.api_key(env) for a in loaded.accounts] == [k.api_key for k in keys]
    assert {a.base_url for a in loaded.accounts} == {"http://127.0.0.1:8123/v2"}


def test_cli_refuses_inconsistent_options(tmp_path: Path) -> None:
    for argv in (
        ["--write-accounts", str(tmp_path / "a.yaml")],
        ["--accounts", "2", "--api-key", "cal_x"],
        ["--accounts", "0"],
    ):
        with pytest.raises(SystemExit) as exit_:
            demo_main(argv)
        assert exit_.value.code == 2


def test_cli_serves_many_accounts_and_writes_the_files(tmp_path: Path) -> None:
    target = tmp_path / "accounts.yaml"
    command = [sys.executable, "-m", "sched_assets.demo", "--port", "0", "--accounts", "3"]
    command += ["--bookings", "200", "--rate-limit", "120/60/60", "--write-accounts", str(target)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("Admin:"):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        url = re.search(r"http://127\.0\.0\.1:\d+/v2", lines[0])
        assert url and "3 accounts, 600 standard bookings" in lines[0], output
        assert "accounts.env" in output and "--partition demo-001" in output
        document = yaml.safe_load(target.read_text())
        assert [a["base_url"] for a in document["accounts"]] == [url.group(0)] * 3
        env_values = parse_env(target.with_suffix(".env"))
        totals = []
        for account in document["accounts"]:
            headers = {
                "Authorization": f"Bearer {env_values[account['api_key_env']]}",
                **headers_for("bookings"),
            }
            response = httpx.get(
                account["base_url"] + "/bookings", params={"take": 1}, headers=headers, timeout=10
            )
            assert response.status_code == 200 and response.headers["X-RateLimit-Limit-Default"] == "120"
            totals.append(response.json()["pagination"]["totalItems"])
        assert sum(totals) == 600 and len(set(totals)) > 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def test_per_account_fault_sequences_do_not_depend_on_other_accounts(keys: list[DemoAccountKey]) -> None:
    """Each key rolls its own dice: its faults are the same whether or not others are being read."""

    def statuses(interleave: bool) -> list[int]:
        api = DemoApi(accounts=keys, faults=Faults(seed=5, error_rate=0.3, html_fraction=0.0))
        mine = {"Authorization": f"Bearer {keys[0].api_key}"}
        other = {"Authorization": f"Bearer {keys[1].api_key}"}
        seen = []
        for _ in range(40):
            seen.append(api.handle("GET", "/v2/me", {}, mine).status)
            if interleave:
                api.handle("GET", "/v2/me", {}, other)
        return seen

    alone = statuses(interleave=False)
    assert alone == statuses(interleave=True)
    assert 200 in alone and any(s >= 500 for s in alone)
