"""People of the demo account (owner, team members, attendees) and small random helpers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

Json = dict[str, Any]
T = TypeVar("T")

OWNER_ID = 4211
DEFAULT_SCHEDULE_ID = 701
SALES_TEAM_ID = 91
SUPPORT_TEAM_ID = 92
DOMAIN = "demo.example"

_FIRST = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ines", "Jonas", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomoko", "Ugo", "Vera", "Wen",
    "Xavier", "Yara", "Zoltan", "Amara", "Björn", "Chloé", "Diego", "Emre", "Fatima", "Grace", "Hugo",
)  # fmt: skip
_LAST = (
    "Lindqvist", "Okafor", "Rossi", "Petrov", "Yilmaz", "Haddad", "Berg", "Sato", "García", "Weber",
    "Mensah", "Novak", "Fernández", "Kowalski", "Nakamura", "Dubois", "Schmidt", "Olsen", "Moreau",
    "Costa", "Müller", "O'Brien", "Chen", "Silva", "Andersson", "Kaur", "Jensen", "Ivanova", "Ruiz",
)  # fmt: skip
ATTENDEE_ZONES = (
    "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles", "Europe/Paris",
    "Asia/Tokyo", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo", "Africa/Lagos",
)  # fmt: skip
LANGUAGES = ("en", "en", "en", "de", "fr", "es", "pt", "ja")


def pick(rng: random.Random, options: Sequence[T]) -> T:
    """`rng.choice`, about three times faster (bookings call it a dozen times each)."""
    return options[int(rng.random() * len(options))]


def person_name(rng: random.Random) -> tuple[str, str]:
    """A random (first, last) name pair."""
    return pick(rng, _FIRST), pick(rng, _LAST)


_ASCII = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "é": "e", "á": "a", "í": "i", "'": ""})


def slugify(text: str) -> str:
    """Lower-case ASCII slug (good enough for the demo's own names)."""
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower().translate(_ASCII))
    return "-".join(part for part in out.split("-") if part)


# Email-safe forms of every name, computed once: attendee emails are built a million times.
EMAIL_PART: dict[str, str] = {name: slugify(name).replace("-", "") for name in (*_FIRST, *_LAST)}


@dataclass(frozen=True)
class Person:
    """A user of the account (the key's owner or a team member); `host()` is the booking host shape."""

    id: int
    first: str
    last: str
    time_zone: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def username(self) -> str:
        return slugify(self.name)

    @property
    def email(self) -> str:
        return f"{self.username.replace('-', '.')}@{DOMAIN}"

    @cached_property
    def _host(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "displayEmail": self.email,
            "username": self.username,
            "timeZone": self.time_zone,
        }

    def host(self) -> Json:
        """The booking `hosts[]` item (a fresh copy: callers may reshape it)."""
        return dict(self._host)
