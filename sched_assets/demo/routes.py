"""Which resource a request path names: the specs' paths plus the routes the service itself owns.

The fake service owns its routes: `/teams` and `/teams/{teamId}/event-types` are served whether or
not the client's specs describe them (a spec named `teams`, when given, supplies the teams route).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sched_assets.api.specs import EndpointSpec

TEAMS = "teams"
TEAM_EVENT_TYPES = "team_event_types"  # the name `Faults.fail_status` and `Faults.resources` use

# Used when no spec is named `teams`: the demo serves the route anyway.
TEAMS_SPEC = EndpointSpec(
    name=TEAMS,
    path="/teams",
    selector="data.*",
    primary_key=("id",),
    columns={"id": "int"},
    preview_columns=("id",),
    description="The teams of the API key's user (the demo's own route).",
    demo_data=lambda catalog: catalog.teams_data(),
)


@dataclass(frozen=True)
class Route:
    """A resolved request: the resource `name`, its spec (None for team event types), the raw team id."""

    name: str
    spec: EndpointSpec | None = None
    team_id: str | None = None


class Router:
    """Maps `root + path` to a `Route`; trailing slashes are ignored, anything else is None (404)."""

    def __init__(self, root: str, resources: Sequence[EndpointSpec]) -> None:
        self.root = root
        specs = list(resources)
        if not any(spec.name == TEAMS for spec in specs):
            specs.append(TEAMS_SPEC)
        self.specs: tuple[EndpointSpec, ...] = tuple(specs)
        self._fixed = {spec.path: Route(spec.name, spec) for spec in specs}

    def resolve(self, path: str) -> Route | None:
        if self.root and not path.startswith(self.root + "/"):
            return None
        rest = path[len(self.root) :].rstrip("/")
        fixed = self._fixed.get(rest)
        if fixed is not None:
            return fixed
        parts = rest.split("/")
        if (
            len(parts) == 4
            and parts[0] == ""
            and parts[1] == "teams"
            and parts[2]
            and parts[3] == "event-types"
        ):
            return Route(TEAM_EVENT_TYPES, None, parts[2])
        return None
