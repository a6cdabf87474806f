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
_KNOWN = (
    "stats",
    "accounts",
    "reset-stats",
    "reset-limits",
    "faults",
    "rate-limit",
    "touch",
    "delete",
    "add",
)
_ACCOUNT_PARAM = "account"


def admin_response(api: DemoApi, method: str, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
    """(status, JSON body) of an admin request. Test hooks: no auth, no rate limit, no faults, not counted.

    GET stats, accounts; POST reset-stats, reset-limits, faults?error_rate=..&..., rate-limit?value=120/60/60,
    touch?fraction=0.01 (or ids=1,2; optional at=ISO), delete?ids=1,2, add?n=10 (optional at=ISO).
    `faults` takes every `Faults` field by name (see `faults_from_params`), e.g.
    `legacy_event_types=0`, `max_take=50`, `fail_team_ids=91`, `reset_header=epoch`, and the live
    changes `edits_per_page=2&deletes_per_page=1&edit_targets=unread&live_changes_after=40`
    (`stats` counts them as `edited` and `deleted`).

    A server of several accounts takes `account=NAME` (or the account's key): stats, reset-limits,
    faults and rate-limit then apply to that account alone (without it: to all; `stats` lists each
    account's counters), and touch, delete and add need it. `accounts` lists the names and keys.
    """
    name = path[len(ADMIN_PREFIX) :].strip("/")
    wanted = {"stats": "GET", "accounts": "GET"}.get(name, "POST")
    if name not in _KNOWN:
        return 404, {"error": f"unknown {path}"}
    if method != wanted:
        return 405, {"error": f"use {wanted}"}
    params = dict(query)
    account = params.pop(_ACCOUNT_PARAM, None)
    try:
        return 200, _action(api, name, account, params)
    except KeyError as exc:
        return 400, {"error": str(exc.args[0]) if exc.args else str(exc)}
    except ValueError as exc:
        return 400, {"error": str(exc)}


def _action(api: DemoApi, name: str, account_name: str | None, query: Mapping[str, str]) -> dict[str, Any]:
    with api.lock:
        if name == "accounts":
            return {"accounts": _accounts(api)}
        if name == "stats":
            if api.multi and account_name is None:
                per_account = {n: _brief(api.account_stats(n).snapshot()) for n in api.account_names}
                return {**api.stats.snapshot(), "accounts": per_account, "resident": api.resident()}
            account = api.account if account_name is None else api.account_for(account_name, pin=False)
            return {
                **api.account_stats(account_name).snapshot(),
                "bookings": account.booking_count,
                "generation": account.generation,
            }
        if name == "reset-stats":
            api.reset_stats()
            return {"ok": True}
        if name == "reset-limits":
            api.reset_limits(account_name)
            return {"ok": True}
        if name == "faults":  # replaces every fault setting; no parameters = all off
            faults = faults_from_params(query)
            api.set_faults(faults, account_name)
            return {"ok": True, "faults": faults_json(faults)}
        if name == "rate-limit":
            rule = RateLimit.parse(query.get("value", "none"))
            api.set_rate_limit(rule, account_name)
            return {"ok": True, "rate_limit": asdict(rule) if rule else None}
        if api.multi and account_name is None:
            raise ValueError(f"{name} needs account=NAME on a server of several accounts")
        account = api.account_for(account_name) if account_name is not None else api.account
        at = datetime.fromtimestamp(parse_iso(query["at"]), tz=UTC) if "at" in query else None
        if name == "touch":
            target = _ids(query["ids"]) if "ids" in query else float(query.get("fraction", "0.01"))
            ids = account.touch(target, at=at)
            return {"touched": len(ids), "ids": ids}
        if name == "delete":
            return {"deleted": account.delete(_ids(query.get("ids", "")))}
        ids = account.add(int(query.get("n", "1")), at=at)
        return {"added": len(ids), "ids": ids}


def _brief(snapshot: dict[str, Any]) -> dict[str, Any]:
    keep = ("requests", "by_status", "throttled", "blocked_requests", "edited", "deleted")
    return {k: snapshot[k] for k in keep}


def _accounts(api: DemoApi) -> list[dict[str, Any]]:
    resident = set(api.resident())
    return [{"name": n, "api_key": api.account_key(n), "resident": n in resident} for n in api.account_names]


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]
