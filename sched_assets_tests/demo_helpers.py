"""What a complete sync of a demo account must end with, read straight from the account."""

from __future__ import annotations

from typing import Any

from sched_assets.api.selector import select_records
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.demo import DEMO_API_KEY
from sched_assets.demo.generator import BOOKING_ID_BASE, DemoAccount

# Request headers as the client sends them: the key, plus each versioned endpoint's header.
AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
V_EVENT_TYPES = {**AUTH, **ENDPOINTS_BY_NAME["event_types"].headers}
V_SCHEDULES = {**AUTH, **ENDPOINTS_BY_NAME["schedules"].headers}
V_BOOKINGS = {**AUTH, **ENDPOINTS_BY_NAME["bookings"].headers}


def account_booking_ids(account: DemoAccount) -> list[int]:
    """Ids of all existing bookings, ascending."""
    return [BOOKING_ID_BASE + slot for slot in account.live_slots()]


def all_records(account: DemoAccount, name: str) -> list[dict[str, Any]]:
    """Every record of a resource as the endpoint returns it (conferencing includes `key`).

    For bookings this materialises every booking: fine for tests, not for a million rows.
    """
    if name == "bookings":
        return [account.record(slot) for slot in account.live_slots()]
    spec = ENDPOINTS_BY_NAME[name]
    records = select_records({"data": account.response_data(spec)}, spec.selector)
    if spec.fan_out is not None:  # event types: the own ones, then every team's
        for team in all_records(account, spec.fan_out.parent.name):
            for record in account.catalog.team_event_types(team["id"]):
                records.append({**record, "teamId": record.get("teamId", team["id"])})
    return records


def expected_count(account: DemoAccount, name: str) -> int:
    """How many records a complete sync of `name` must end with."""
    return account.booking_count if name == "bookings" else len(all_records(account, name))
