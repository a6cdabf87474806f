"""Availability schedules of the demo account, in the shapes the API returns them."""

from __future__ import annotations

from dataclasses import dataclass

from sched_assets.demo.people import DEFAULT_SCHEDULE_ID, OWNER_ID, Json


@dataclass(frozen=True)
class Window:
    """One weekly availability window in local minutes-of-day; weekday 0 = Monday."""

    days: tuple[int, ...]
    start: int
    end: int


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Schedule:
    """An availability schedule; `record()` is the 2024-06-11 shape."""

    id: int
    name: str
    time_zone: str
    is_default: bool
    windows: tuple[Window, ...]
    overrides: tuple[tuple[str, int, int], ...]  # (date, start minute, end minute)

    def record(self) -> Json:
        return {
            "id": self.id,
            "ownerId": OWNER_ID,
            "name": self.name,
            "timeZone": self.time_zone,
            "availability": [
                {
                    "days": [_DAY_NAMES[d] for d in w.days],
                    "startTime": _hhmm(w.start),
                    "endTime": _hhmm(w.end),
                }
                for w in self.windows
            ],
            "isDefault": self.is_default,
            "overrides": [
                {"date": day, "startTime": _hhmm(start), "endTime": _hhmm(end)}
                for day, start, end in self.overrides
            ],
        }

    def legacy_record(self) -> Json:
        """The pre-2024-06-11 shape a missing/unknown version header silently selects."""
        return {
            "id": self.id,
            "name": self.name,
            "isManaged": False,
            "workingHours": [
                {
                    "days": [(d + 1) % 7 for d in w.days],
                    "startTime": w.start,
                    "endTime": w.end,
                    "userId": OWNER_ID,
                }
                for w in self.windows
            ],
            "availability": [
                [
                    {
                        "start": f"1970-01-01T{_hhmm(w.start)}:00.000Z",
                        "end": f"1970-01-01T{_hhmm(w.end)}:00.000Z",
                    }
                    for w in self.windows
                    if d in w.days
                ]
                for d in (6, 0, 1, 2, 3, 4, 5)  # Sunday first, like the old API
            ],
            "timeZone": self.time_zone,
            "dateOverrides": [
                {"ranges": [{"start": f"{day}T{_hhmm(s)}:00.000Z", "end": f"{day}T{_hhmm(e)}:00.000Z"}]}
                for day, s, e in self.overrides
            ],
            "isDefault": self.is_default,
            "isLastSchedule": False,
            "readOnly": False,
        }


def build_schedules() -> tuple[Schedule, ...]:
    """Four schedules in two time zones, with overlapping windows and day-off style overrides."""
    weekdays = (0, 1, 2, 3, 4)
    return (
        Schedule(
            DEFAULT_SCHEDULE_ID,
            "Working hours",
            "Europe/Berlin",
            True,
            (Window(weekdays, 9 * 60, 17 * 60),),
            (("2026-12-24", 9 * 60, 12 * 60), ("2026-12-31", 0, 0), ("2026-05-01", 0, 0)),
        ),
        Schedule(
            702,
            "New York office",
            "America/New_York",
            False,
            (Window((0, 1, 2, 3), 8 * 60 + 30, 16 * 60 + 30), Window((4,), 8 * 60 + 30, 13 * 60)),
            (("2026-11-26", 0, 0), ("2026-07-03", 9 * 60, 11 * 60)),
        ),
        Schedule(
            703,
            "Evenings and Saturdays",
            "Europe/Berlin",
            False,
            # Overlapping windows on purpose: Mon/Wed 12:00-20:00 overlaps 09:00-13:00.
            (
                Window(weekdays, 9 * 60, 13 * 60),
                Window((0, 2), 12 * 60, 20 * 60),
                Window((5,), 10 * 60, 14 * 60),
            ),
            (("2026-08-15", 10 * 60, 10 * 60 + 30),),
        ),
        Schedule(
            704,
            "Summer (NY)",
            "America/New_York",
            False,
            (Window((0, 1, 2, 3, 4), 7 * 60, 15 * 60),),
            (),
        ),
    )
