"""Adding a resource is one spec entry: a throwaway resource syncs end to end from the demo API."""

from __future__ import annotations

import dagster as dg
import duckdb
import orjson

from sched_assets.api.specs import ENDPOINTS, EndpointSpec
from sched_assets.definitions import warehouse_resources
from sched_assets.defs.checks import raw_primary_key_checks_for
from sched_assets.defs.keys import raw_key
from sched_assets.defs.resources import SchedApiResource
from sched_assets.defs.sources import build_source_assets
from sched_assets.demo import DEMO_API_KEY, DemoAccount, DemoApi, serve

WEBHOOK_RECORDS = [
    {
        "id": 1,
        "subscriberUrl": "https://hooks.example.com/a",
        "active": True,
        "createdAt": "2026-10-01T08:00:00.000Z",
        "triggers": ["BOOKING_CREATED", "BOOKING_CANCELLED"],
        "secret": "whsec_must_never_be_stored",
        "payloadTemplate": None,
        "version": "2024-08-13",  # not declared below: must land in _extra
    },
    {
        "id": 2,
        "subscriberUrl": "https://hooks.example.com/b",
        "active": "false",  # losslessly converted to a boolean
        "createdAt": "2026-10-02T09:30:00.000Z",
        "triggers": [],
        "secret": "whsec_second",
        "payloadTemplate": "{}",
    },
]

# The whole change needed for a new resource: this entry (its demo data included).
WEBHOOKS = EndpointSpec(
    name="webhooks",
    path="/webhooks",
    selector="data.*",
    primary_key=("id",),
    description="One row per webhook subscription.",
    columns={
        "id": "int",
        "subscriberUrl": "str",
        "active": "bool",
        "createdAt": "ts",
        "triggers": "json",
        "payloadTemplate": "str",
    },
    preview_columns=("id", "subscriber_url", "active"),
    secret_fields=frozenset({"secret"}),
    demo_data=lambda catalog: WEBHOOK_RECORDS,
)


def test_one_spec_entry_adds_a_synced_checked_resource(tmp_path, instance):
    specs = (*ENDPOINTS, WEBHOOKS)
    database = tmp_path / "w.duckdb"
    api = DemoApi(DemoAccount(bookings=30), resources=specs)
    with serve(api) as server:
        result = dg.materialize(
            [build_source_assets(specs), raw_primary_key_checks_for(specs)],
            selection=[raw_key("webhooks"), raw_key("schedules")],
            resources={
                "sched_api": SchedApiResource(base_url=server.url, api_key=DEMO_API_KEY),
                **warehouse_resources(str(database)),
            },
            instance=instance,
        )
    assert result.success
    assert api.stats.by_path["/v2/webhooks"] == 1

    materialization = next(
        m for m in result.asset_materializations_for_node("raw_sources") if m.asset_key == raw_key("webhooks")
    )
    assert materialization.metadata["dagster/row_count"].value == 2
    assert "subscriber_url" in materialization.metadata["preview"].value
    checks = {c.asset_key: c.passed for c in result.get_asset_check_evaluations()}
    assert checks[raw_key("webhooks")] is True

    with duckdb.connect(str(database), read_only=True) as con:
        columns = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'webhooks'"
            ).fetchall()
        )
        rows = con.execute(
            "select id, subscriber_url, active, created_at, triggers, payload_template, _extra "
            "from raw.webhooks order by id"
        ).fetchall()
        stored = con.execute("select * from raw.webhooks").fetchall()
    assert columns["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["triggers"] == "JSON" and columns["active"] == "BOOLEAN"
    assert "secret" not in columns
    assert [(r[0], r[1], r[2], r[3].isoformat()) for r in rows] == [
        (1, "https://hooks.example.com/a", True, "2026-10-01T08:00:00+00:00"),
        (2, "https://hooks.example.com/b", False, "2026-10-02T09:30:00+00:00"),
    ]
    assert orjson.loads(rows[0][4]) == ["BOOKING_CREATED", "BOOKING_CANCELLED"]
    assert orjson.loads(rows[0][6]) == {"version": "2024-08-13"}
    assert rows[1][6] is None
    assert "whsec" not in repr(stored)
