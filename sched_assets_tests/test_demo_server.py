"""The demo API over a real local socket: admin endpoints, faults on the wire, keep-alive, the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi, DemoServer, Faults, RateLimit, serve
from sched_assets_tests.demo_helpers import account_booking_ids

HEADERS = {"Authorization": f"Bearer {DEMO_API_KEY}", "cal-api-version": "2024-08-13"}


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with serve(DemoApi(DemoAccount(1000))) as running:
        yield running


def client(server: DemoServer, **kwargs: object) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HEADERS, **kwargs)  # type: ignore[arg-type]


def test_serves_json_with_keep_alive(server: DemoServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v2", server.url)
    with client(server) as c:
        first = c.get("/bookings", params={"take": 250})
        second = c.get("/bookings", params={"take": 250, "skip": 250})
        assert first.status_code == second.status_code == 200
        assert first.headers["content-type"].startswith("application/json")
        assert int(first.headers["content-length"]) == len(first.content)
        assert first.json()["data"][0]["id"] < second.json()["data"][0]["id"]
        assert c.get("/me").json()["data"]["id"]
    assert server.api.stats.requests == 3


def test_admin_endpoints(server: DemoServer) -> None:
    admin = server.base_url + "/_demo"
    with client(server) as c, httpx.Client() as plain:
        c.get("/me")
        c.get("/nope")
        stats = plain.get(f"{admin}/stats").json()
        assert stats["requests"] == 2 and stats["by_status"] == {"200": 1, "404": 1}
        assert stats["bookings"] == 1000

        touched = plain.post(f"{admin}/touch", params={"fraction": 0.01}).json()
        assert touched["touched"] == 10
        changed = c.get("/bookings", params={"afterUpdatedAt": "2026-11-01T00:00:01Z"}).json()
        assert sorted(b["id"] for b in changed["data"]) == touched["ids"]
        at = plain.post(f"{admin}/touch", params={"ids": "40001,40002", "at": "2026-11-30T10:00:00Z"}).json()
        assert at["ids"] == [40001, 40002]
        assert (
            c.get("/bookings", params={"take": 1}).json()["data"][0]["updatedAt"]
            == "2026-11-30T10:00:00.000Z"
        )

        assert plain.post(f"{admin}/delete", params={"ids": "40001,40002,1"}).json() == {"deleted": 2}
        added = plain.post(f"{admin}/add", params={"n": 4}).json()
        body = c.get("/bookings", params={"take": 250, "skip": 752}).json()
        assert body["pagination"]["totalItems"] == 1002
        assert [b["id"] for b in body["data"]][-4:] == added["ids"]

        assert plain.post(f"{admin}/reset-stats").json() == {"ok": True}
        assert plain.get(f"{admin}/stats").json()["requests"] == 0
        assert plain.get(f"{admin}/touch").status_code == 405
        assert plain.post(f"{admin}/nope").status_code == 404
        assert plain.post(f"{admin}/touch", params={"fraction": "lots"}).status_code == 400


def test_admin_is_not_rate_limited_and_reset_limits_works() -> None:
    api = DemoApi(DemoAccount(20), rate_limit=RateLimit(limit=1, window=60, block=60))
    with serve(api) as running, client(running) as c, httpx.Client() as plain:
        assert [c.get("/me").status_code for _ in range(3)] == [200, 429, 429]
        assert "retry-after" not in c.get("/me").headers
        stats = plain.get(running.base_url + "/_demo/stats").json()
        assert stats["throttled"] == 3 and stats["blocked_requests"] == 2
        plain.post(running.base_url + "/_demo/reset-limits").raise_for_status()
        assert c.get("/me").status_code == 200


def test_reset_truncate_and_timeout_on_the_wire() -> None:
    api = DemoApi(DemoAccount(50), faults=Faults(reset_rate=1.0))
    with serve(api, timeout_stall=5.0) as running, client(running, timeout=0.5) as c:
        with pytest.raises(httpx.TransportError):
            c.get("/me")
        api.faults = Faults(truncate_rate=1.0)
        truncated = c.get("/bookings")
        assert truncated.status_code == 200
        with pytest.raises(ValueError):
            truncated.json()
        api.faults = Faults(timeout_rate=1.0)
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            c.get("/me")
        assert time.perf_counter() - started < 3
        api.faults = Faults(error_rate=1.0, html_fraction=1.0)
        gateway = c.get("/me")
        assert gateway.status_code >= 500 and gateway.headers["content-type"] == "text/html"
        api.faults = Faults()
        assert c.get("/me").status_code == 200  # the server recovered from all of it
    assert api.stats.by_action["reset"] == 1 and api.stats.by_action["timeout"] == 1


def test_concurrent_keep_alive_clients(server: DemoServer) -> None:
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            with client(server) as c:
                ids = []
                for i in range(5):
                    body = c.get("/bookings", params={"take": 40, "skip": (k * 5 + i) * 40}).json()
                    ids += [b["id"] for b in body["data"]]
                results[k] = ids
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    every = sorted(i for ids in results.values() for i in ids)
    assert every == account_booking_ids(server.api.account)


def test_cli_prints_url_and_key_and_serves() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sched_assets.demo",
            "--port",
            "0",
            "--bookings",
            "300",
            "--rate-limit",
            "120/60/60",
            "--max-take",
            "50",
            "--reset-header",
            "epoch",
            "--no-legacy-event-types",
            "--fail-team-ids",
            "92",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/v2", first)
        assert url, first
        key = second.split(":", 1)[1].strip()
        assert key == DEMO_API_KEY
        response = httpx.get(url.group(0) + "/bookings", params={"take": 1}, headers=HEADERS, timeout=10)
        assert response.status_code == 200 and response.json()["pagination"]["totalItems"] == 300
        assert response.headers["X-RateLimit-Limit-Default"] == "120"
        assert int(response.headers["X-RateLimit-Reset-Default"]) > time.time()  # an epoch time
        page = httpx.get(url.group(0) + "/bookings", params={"take": 100}, headers=HEADERS, timeout=10).json()
        assert len(page["data"]) == 50 and page["pagination"]["itemsPerPage"] == 50
        auth = {"Authorization": HEADERS["Authorization"]}
        event_types = httpx.get(url.group(0) + "/event-types", headers=auth, timeout=10).json()["data"]
        assert isinstance(event_types, list) and "lengthInMinutes" in event_types[0]
        assert httpx.get(url.group(0) + "/teams/91/event-types", headers=auth, timeout=10).status_code == 200
        assert httpx.get(url.group(0) + "/teams/92/event-types", headers=auth, timeout=10).status_code == 500
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def test_faults_and_rate_limit_can_be_changed_at_runtime(server: DemoServer) -> None:
    admin = server.base_url + "/_demo"
    with client(server) as c, httpx.Client() as plain:
        set_faults = plain.post(f"{admin}/faults", params={"fail_status": "bookings=403", "drift": "1"})
        assert set_faults.json()["faults"]["fail_status"] == {"bookings": 403}
        assert c.get("/bookings").status_code == 403 and c.get("/me").status_code == 200
        assert plain.post(f"{admin}/faults", params={"nonsense": "1"}).status_code == 400
        plain.post(f"{admin}/faults").raise_for_status()  # no parameters: all faults off
        assert c.get("/bookings").status_code == 200
        knobs = {"fail_team_ids": "91", "max_take": "7", "legacy_event_types": "0", "reset_header": "epoch"}
        assert plain.post(f"{admin}/faults", params=knobs).json()["faults"]["fail_team_ids"] == [91]
        assert c.get("/teams/91/event-types").status_code == 500 and c.get("/teams/92/event-types").is_success
        assert len(c.get("/bookings", params={"take": 100}).json()["data"]) == 7
        assert isinstance(c.get("/event-types", headers={"cal-api-version": ""}).json()["data"], list)
        assert int(c.get("/teams").headers["X-RateLimit-Reset-Default"]) > time.time()
        plain.post(f"{admin}/faults").raise_for_status()
        plain.post(f"{admin}/rate-limit", params={"value": "2/60/60"}).raise_for_status()
        assert [c.get("/me").status_code for _ in range(3)] == [200, 200, 429]
        plain.post(f"{admin}/rate-limit", params={"value": "none"}).raise_for_status()
        assert c.get("/me").status_code == 200
