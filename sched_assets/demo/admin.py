"""The demo's admin endpoints under `/_demo/`: test hooks, never part of the fake API itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sched_assets.demo.faults import faults_from_params, faults_json
from sched_assets.demo.ratelimit import RateLimit
from sched_assets.demo.timefmt import parse_iso

if TYPE_CHECKING:
    from sched_assets.demo.app import DemoApi

ADMIN_PREFIX = "/_demo/"
_KNOWN = ("stats", "reset-stats", "reset-limits", "faults", "rate-limit", "touch", "delete", "add")


def admin_response(api: DemoApi, method: str, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
    """(status, JSON body) of an admin request. Test hooks: no auth, no rate limit, no faults, not counted.

    GET stats; POST reset-stats, reset-limits, faults?error_rate=..&..., rate-limit?value=120/60/60,
    touch?fraction=0.01 (or ids=1,2; optional at=ISO), delete?ids=1,2, add?n=10 (optional at=ISO).
    `faults` takes every `Faults` field by name (see `faults_from_params`), e.g.
    `legacy_event_types=0`, `max_take=50`, `fail_team_ids=91`, `reset_header=epoch`, and the live
    changes `edits_per_page=2&deletes_per_page=1&edit_targets=unread&live_changes_after=40`
    (`stats` counts them as `edited` and `deleted`).
    """
    name = path[len(ADMIN_PREFIX) :].strip("/")
    wanted = {"stats": "GET"}.get(name, "POST")
    if name not in _KNOWN:
        return 404, {"error": f"unknown {path}"}
    if method != wanted:
        return 405, {"error": f"use {wanted}"}
    try:
        return 200, _action(api, name, query)
    except (ValueError, KeyError) as exc:
        return 400, {"error": str(exc)}


def _action(api: DemoApi, name: str, query: Mapping[str, str]) -> dict[str, Any]:
    with api.lock:
        account = api.account
        if name == "stats":
            return {
                **api.stats.snapshot(),
                "bookings": account.booking_count,
                "generation": account.generation,
            }
        if name == "reset-stats":
            api.reset_stats()
            return {"ok": True}
        if name == "reset-limits":
            api.reset_limits()
            return {"ok": True}
        if name == "faults":  # replaces every fault setting; no parameters = all off
            api.faults = faults_from_params(query)
            return {"ok": True, "faults": faults_json(api.faults)}
        if name == "rate-limit":
            api.rate_limit = RateLimit.parse(query.get("value", "none"))
            return {"ok": True, "rate_limit": asdict(api.rate_limit) if api.rate_limit else None}
        at = datetime.fromtimestamp(parse_iso(query["at"]), tz=UTC) if "at" in query else None
        if name == "touch":
            target = _ids(query["ids"]) if "ids" in query else float(query.get("fraction", "0.01"))
            ids = account.touch(target, at=at)
            return {"touched": len(ids), "ids": ids}
        if name == "delete":
            return {"deleted": account.delete(_ids(query.get("ids", "")))}
        ids = account.add(int(query.get("n", "1")), at=at)
        return {"added": len(ids), "ids": ids}


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]
