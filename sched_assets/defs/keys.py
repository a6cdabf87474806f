"""Asset keys and schemas of the warehouse: one definition, read by every asset, check and job.

An asset key `<schema>/<table>` is stored as the DuckDB table `<schema>.<table>`.
"""

from __future__ import annotations

import dagster as dg

from sched_assets.storage.naming import ANALYTICS_SCHEMA, HISTORY_SCHEMA, RAW_SCHEMA


def raw_key(name: str) -> dg.AssetKey:
    """Key of the raw source asset of one API resource (`raw/<name>`, table `raw.<name>`)."""
    return dg.AssetKey([RAW_SCHEMA, name])


def analytics_key(name: str) -> dg.AssetKey:
    """Key of a derived asset (`analytics/<name>`, table `analytics.<name>`)."""
    return dg.AssetKey([ANALYTICS_SCHEMA, name])


def history_key(name: str) -> dg.AssetKey:
    """Key of the versions of one API resource's rows (`history/<name>`, table `history.<name>`)."""
    return dg.AssetKey([HISTORY_SCHEMA, name])


def history_table(name: str) -> str:
    """`history.<name>`: every version of the rows of `raw.<name>`, written in the same transaction."""
    return f"{HISTORY_SCHEMA}.{name}"


def raw_table(name: str) -> str:
    """`raw.<name>`: the table the raw asset of one API resource writes."""
    return f"{RAW_SCHEMA}.{name}"
