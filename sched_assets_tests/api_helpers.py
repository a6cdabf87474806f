"""Test helpers around the API client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sched_assets.api.client import SchedApiClient, SyncStats, record_key
from sched_assets.api.specs import EndpointSpec


def fetch_all(
    client: SchedApiClient,
    spec: EndpointSpec,
    params: Mapping[str, str] | None = None,
    stats: SyncStats | None = None,
) -> list[dict[str, Any]]:
    """All records of `spec`, de-duplicated on its primary key (the last one seen wins), as a sync stores them."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for page in client.iter_pages(spec, params, stats):
        for record in page.records:
            key = record_key(spec, record)
            by_key.pop(key, None)  # re-insert so order follows the last sighting
            by_key[key] = record
    return list(by_key.values())
