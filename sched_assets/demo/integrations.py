"""Connected calendars and conferencing apps of the demo account, quirks included."""

from __future__ import annotations

from typing import Any

from sched_assets.demo.people import SALES_TEAM_ID, Json, Person

# A recognisable fake OAuth token: tests scan stored data and logs for it to prove it never leaks.
DEMO_OAUTH_TOKEN = "ya29.demo-oauth-token-NOT-A-REAL-SECRET-5f2c9e1a"
DEMO_REFRESH_TOKEN = "1//demo-refresh-token-NOT-A-REAL-SECRET-8b7d4c30"
DEMO_SECRETS: tuple[str, ...] = (DEMO_OAUTH_TOKEN, DEMO_REFRESH_TOKEN)


def _app(type_: str, title: str, slug: str, dir_name: str, description: str) -> Json:
    """A connected calendar's `integration`: the app-store entry the service sends along."""
    return {
        "name": title,
        "description": description,
        "type": type_,
        "title": title,
        "variant": "calendar",
        "category": "calendar",
        "categories": ["calendar"],
        "logo": f"/app-store/{dir_name}/logo.svg",
        "publisher": "Cal.com",
        "slug": slug,
        "url": "https://cal.com/",
        "email": "help@cal.com",
        "dirName": dir_name,
        "installed": True,
        "appData": None,
        "locationOption": None,
    }


_GOOGLE = _app("google_calendar", "Google Calendar", "google-calendar", "googlecalendar", "Google Calendar")
_OUTLOOK = _app(
    "office365_calendar", "Outlook Calendar", "office365-calendar", "office365calendar", "Outlook Calendar"
)
_APPLE = _app("apple_calendar", "Apple Calendar", "apple-calendar", "applecalendar", "Apple Calendar")
HOLIDAY_CALENDAR = "en.german#holiday@group.v.calendar.google.com"


def _cal(
    credential: int,
    external_id: str,
    name: str,
    email: str,
    *,
    primary: bool | None = None,
    read_only: bool = False,
    selected: bool = True,
    integration: str = "google_calendar",
) -> Json:
    return {
        "externalId": external_id,
        "integration": integration,
        "name": name,
        "primary": primary,
        "readOnly": read_only,
        "email": email,
        "isSelected": selected,
        "credentialId": credential,
        "delegationCredentialId": None,
    }


def _connected(integration: Json, credential: int, rows: list[Json]) -> Json:
    return {
        "integration": integration,
        "credentialId": credential,
        "delegationCredentialId": None,
        "primary": rows[0],
        "calendars": rows,
    }


def calendars(owner: Person) -> Json:
    """Connected calendars: a shared holiday calendar under two credentials, and one broken credential."""
    work, private = owner.email, f"{owner.username}.private@gmail.example"
    icloud = "https://caldav.icloud.example/1234/calendars"
    google_work = [
        _cal(301, work, work, work, primary=True),
        _cal(301, "c_sales_team@group.calendar.google.com", "Team Sales", work),
        _cal(301, HOLIDAY_CALENDAR, "Holidays in Germany", work, read_only=True, selected=False),
    ]
    google_private = [
        _cal(302, private, private, private, primary=True),
        # Same externalId as under credential 301: calendars are keyed by (credentialId, externalId).
        _cal(302, HOLIDAY_CALENDAR, "Holidays in Germany", private, read_only=True),
    ]
    apple = [
        _cal(
            304,
            f"{icloud}/home/",
            "Home",
            private,
            primary=True,
            selected=False,
            integration="apple_calendar",
        ),
        _cal(304, f"{icloud}/birthdays/", "Birthdays", private, read_only=True, integration="apple_calendar"),
    ]
    broken = {
        # A credential whose token was revoked: an error, and no `calendars` key at all.
        "integration": _OUTLOOK,
        "credentialId": 303,
        "delegationCredentialId": None,
        "error": {"message": "invalid_grant: Token has been expired or revoked."},
    }
    return {
        "connectedCalendars": [
            _connected(_GOOGLE, 301, google_work),
            _connected(_GOOGLE, 302, google_private),
            broken,
            _connected(_APPLE, 304, apple),
        ],
        "destinationCalendar": {
            "id": 88,
            "integration": "google_calendar",
            "externalId": work,
            "primaryEmail": work,
            "userId": owner.id,
            "eventTypeId": None,
            "credentialId": 301,
            "delegationCredentialId": None,
            "name": work,
            "primary": True,
            "readOnly": False,
            "email": work,
            "integrationTitle": "Google Calendar",
        },
    }


# Some server versions return the integration's OAuth tokens in `key`; a client must drop them.
_LEAKED_KEY: Json = {
    "access_token": DEMO_OAUTH_TOKEN,
    "refresh_token": DEMO_REFRESH_TOKEN,
    "scope": "https://www.googleapis.com/auth/calendar.events",
    "token_type": "Bearer",
    "expiry_date": 1798761600000,
}


def conferencing(owner: Person) -> list[Json]:
    """Installed conferencing apps: personal and team-level, one invalid, one leaking its tokens."""

    def row(id_: int, type_: str, app: str, **extra: Any) -> Json:
        base: Json = {
            "id": id_,
            "type": type_,
            "userId": owner.id,
            "teamId": None,
            "appId": app,
            "invalid": False,
            "subscriptionId": None,
            "paymentStatus": None,
            "billingCycleStart": None,
            "delegationCredentialId": None,
        }
        base.update(extra)
        return base

    team_billing = {"subscriptionId": "sub_demo_1QX7", "paymentStatus": "active", "billingCycleStart": 1}
    return [
        row(801, "google_video", "google-meet", key=dict(_LEAKED_KEY)),
        row(802, "zoom_video", "zoom"),
        row(803, "daily_video", "daily-video"),
        row(804, "office365_video", "msteams", invalid=True),
        # A team-level install still names the user who installed it: userId is never null.
        row(805, "zoom_video", "zoom", teamId=SALES_TEAM_ID, **team_billing),
    ]
