"""Response shapes other than the happy v2 path: legacy fallbacks, schema drift, error bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from sched_assets.demo.people import Json

ERROR_CODES = {
    400: ("BadRequestException", "Bad Request"),
    401: ("UnauthorizedException", "ApiAuthStrategy - api key - Your api key is not valid"),
    403: ("ForbiddenException", "Forbidden resource"),
    404: ("NotFoundException", "Not Found"),
    405: ("MethodNotAllowedException", "Method Not Allowed"),
    429: ("ThrottlerException", "Too many requests. Please try again later."),
    500: ("INTERNAL_SERVER_ERROR", "Internal server error"),
    502: ("BadGatewayException", "Bad Gateway"),
    503: ("ServiceUnavailableException", "Service Unavailable"),
    504: ("GatewayTimeoutException", "Gateway Timeout"),
}
_GATEWAY_TITLES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(status: int, path: str, message: str | None = None, details: Any = None) -> bytes:
    """The API's error envelope: `{"status":"error","timestamp","path","error":{"code","message"}}`."""
    code, default = ERROR_CODES.get(status, ("HttpException", "Error"))
    error: Json = {"code": code, "message": message or default}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"status": "error", "timestamp": now_iso(), "path": path, "error": error})


def gateway_html(status: int) -> bytes:
    """What a CDN/load balancer in front of the API answers: HTML, not JSON."""
    title = f"{status} {_GATEWAY_TITLES.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def legacy_booking(rec: Json) -> Json:
    """The pre-2024-08-13 booking shape a missing/unknown `cal-api-version` silently selects."""
    host = rec["hosts"][0] if rec["hosts"] else {}
    return {
        "id": rec["id"],
        "uid": rec["uid"],
        "title": rec["title"],
        "description": rec["description"],
        "startTime": rec["start"],
        "endTime": rec["end"],
        "status": rec["status"].upper(),
        "userId": host.get("id"),
        "user": {k: host.get(k) for k in ("id", "email", "name", "username", "timeZone")},
        "eventTypeId": rec["eventTypeId"],
        "eventType": {"id": rec["eventType"]["id"], "slug": rec["eventType"]["slug"], "team": None},
        "attendees": [
            {
                "id": i + 1,
                "email": a["email"],
                "name": a["name"],
                "timeZone": a["timeZone"],
                "locale": a["language"],
                "bookingId": rec["id"],
                "noShow": a["absent"],
            }
            for i, a in enumerate(rec["attendees"])
        ],
        "responses": rec.get("bookingFieldsResponses", {}),
        "location": rec["location"],
        "metadata": rec["metadata"],
        "paid": False,
        "payment": [],
        "references": [],
        "rescheduled": True if rec.get("rescheduledToUid") else None,
        "fromReschedule": rec.get("rescheduledFromUid"),
        "recurringEventId": rec.get("recurringBookingUid"),
        "cancellationReason": rec.get("cancellationReason") or None,  # v2's "" was null here
        "rejectionReason": None,
        "noShowHost": rec["absentHost"],
        "isRecorded": False,
        "createdAt": rec["createdAt"],
        "updatedAt": rec["updatedAt"],
    }


def drift_booking(rec: Json, midpoint_id: int) -> Json:
    """Schema drift from `midpoint_id` on: new top-level fields, changed types, reshaped nesting.

    Mutates and returns `rec` (records are built fresh per request).
    """
    bid = rec["id"]
    if bid < midpoint_id:
        return rec
    rec["bookingRefs"] = [{"type": "google_calendar", "uid": f"evt_{bid}", "meetingId": None}]
    rec["attendeeCount"] = len(rec["attendees"])
    if bid % 7 == 0:
        rec["duration"] = str(rec["duration"])  # int -> string
    if bid % 11 == 0:
        rec["location"] = {"type": "integrations:daily", "url": rec["location"]}  # string -> object
    if bid % 5 == 0:
        for attendee in rec["attendees"]:
            attendee["language"] = {"locale": attendee["language"]}  # nested string -> object
    if bid % 3 == 0:
        rec["eventType"] = {**rec["eventType"], "title": "Renamed event", "lengthInMinutes": 30}
        rec["hosts"] = [{**h, "avatarUrl": None} for h in rec["hosts"]]
    if bid % 13 == 0:
        rec["metadata"] = {"utm": {"source": "newsletter", "campaign": f"c{bid % 4}"}}
    return rec
