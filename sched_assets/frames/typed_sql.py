"""The SQL that types raw API records (one JSON object per row) into a resource's declared columns.

DuckDB does the typing: each record is parsed once (`json_transform` to one JSON value per declared
field), each value is checked against its column's kind and converted when that loses nothing
("30" -> 30 for an integer column); otherwise the column gets NULL and the value is kept verbatim
in `_extra`, next to the fields the spec does not declare. Secret fields are dropped from `_extra`
(the client strips them before a record reaches disk; this is the second lock).

Listing a record's keys costs as much as typing it, and almost every record has only declared fields.
So a record with any other field must carry `UNDECLARED_MARK: true` (`frames.spill` adds it, after a
set comparison per record); only marked records have their keys listed.

Plain string building: no DuckDB import here.
"""

from __future__ import annotations

import json

from sched_assets.api.specs import EndpointSpec, Kind
from sched_assets.frames.columns import EXTRA_COLUMN, SYNCED_AT_COLUMN, snake_case
from sched_assets.storage.naming import quote_ident, quote_literal

# Bookkeeping columns of a typed batch, read for the metadata and never written to a table.
CONVERTED = "__sched_converted"  # values converted losslessly, per row
MISFITS = "__sched_misfits"  # declared fields whose value did not fit, per row
UNKNOWN = "__sched_unknown"  # undeclared fields, per row
SECRETS = "__sched_secrets"  # secret fields present, per row (must be 0: the client strips them)
RECORD = "json"  # the column holding each record (as `read_json_objects` names it)
UNDECLARED_MARK = "__sched_undeclared__"  # set on records with fields beyond the declared ones

# json_type() of a value that needs no conversion, per kind; `ts` values always arrive as text.
# json_type() says UBIGINT for every non-negative integer, BIGINT for negative ones.
_NATIVE: dict[Kind, str] = {
    "int": "('BIGINT', 'UBIGINT')",
    "float": "('DOUBLE')",
    "bool": "('BOOLEAN')",
    "str": "('VARCHAR')",
}
_INTEGER_TEXT = r"^\s*([+-]?[0-9]{1,18})\s*$"  # Python's int() of a stripped decimal that fits BIGINT
_INTEGER_LITERAL = "^-?[0-9]+$"  # a JSON number written without fraction or exponent
_MAX_EXACT_DOUBLE = 2**53 - 1


def _typed(kind: Kind, v: str, t: str) -> str:
    """The typed value of raw JSON value `v` (whose json_type is `t`) for a column of `kind`, or NULL."""
    text = f"({v} ->> '$')"
    if kind == "json":
        return v  # JSON null is already SQL NULL: absent and null read the same
    if kind == "int":
        return (
            f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST({v} AS BIGINT) "
            # 30.0 is 30; 30.5, 1e30 and integers past BIGINT (parsed as DOUBLE) do not fit.
            f"WHEN {t} = 'DOUBLE' THEN CASE WHEN NOT regexp_matches({v}::VARCHAR, '{_INTEGER_LITERAL}') "
            f"AND {v}::DOUBLE = trunc({v}::DOUBLE) AND {v}::DOUBLE >= -9223372036854775808.0 "
            f"AND {v}::DOUBLE < 9223372036854775808.0 THEN {v}::DOUBLE::BIGINT END "
            f"WHEN {t} = 'VARCHAR' THEN TRY_CAST(nullif(regexp_extract({text}, '{_INTEGER_TEXT}', 1), '') AS BIGINT) "
            "END"
        )
    if kind == "float":
        return (
            # An integer past UBIGINT arrives as DOUBLE: like any integer beyond 2**53, it does not fit.
            f"CASE {t} WHEN 'DOUBLE' THEN CASE WHEN NOT regexp_matches({v}::VARCHAR, '{_INTEGER_LITERAL}') "
            f"THEN {v}::DOUBLE END "
            f"WHEN 'BIGINT' THEN CASE WHEN {v}::BIGINT >= -{_MAX_EXACT_DOUBLE} THEN {v}::DOUBLE END "
            f"WHEN 'UBIGINT' THEN CASE WHEN {v}::UBIGINT <= {_MAX_EXACT_DOUBLE} THEN {v}::DOUBLE END "
            # Text only when it reads back the same: "4.5" yes, "4.50" or "four" no.
            f"WHEN 'VARCHAR' THEN CASE WHEN TRY_CAST(trim({text}) AS DOUBLE)::VARCHAR = trim({text}) "
            f"THEN TRY_CAST(trim({text}) AS DOUBLE) END "
            "END"
        )
    if kind == "bool":
        return (
            f"CASE {t} WHEN 'BOOLEAN' THEN {v}::BOOLEAN "
            f"WHEN 'VARCHAR' THEN CASE lower(trim({text})) WHEN 'true' THEN true WHEN 'false' THEN false END "
            "END"
        )
    if kind == "str":
        # Numbers and booleans read back the same as text; objects and lists do not belong here.
        return (
            f"CASE {t} WHEN 'VARCHAR' THEN {text} "
            f"WHEN 'BOOLEAN' THEN {v}::VARCHAR WHEN 'BIGINT' THEN {v}::VARCHAR WHEN 'UBIGINT' THEN {v}::VARCHAR "
            f"WHEN 'DOUBLE' THEN CASE WHEN regexp_matches({v}::VARCHAR, '{_INTEGER_LITERAL}') THEN {v}::VARCHAR "
            f"ELSE {v}::DOUBLE::VARCHAR END "
            "END"
        )
    if kind == "ts":
        # The API sends UTC ISO 8601; the session's TimeZone is UTC, so a naive timestamp is read as UTC.
        return f"CASE {t} WHEN 'VARCHAR' THEN TRY_CAST(trim({text}) AS TIMESTAMPTZ) END"
    raise ValueError(f"unknown column kind {kind!r}")


def typed_select(spec: EndpointSpec, source: str, synced_at: str) -> str:
    """SELECT over `source` (a relation with one JSON record per row in column `json`) giving the raw
    table's columns, in `column_types(spec)` order, then the bookkeeping columns named above.

    `synced_at` is an ISO 8601 UTC instant stamped on every row.
    """
    fields = list(spec.columns.items())
    raw = [f"__v{i}" for i in range(len(fields))]
    kinds = [f"__t{i}" for i in range(len(fields))]
    structure = json.dumps({UNDECLARED_MARK: "BOOLEAN", **{name: "JSON" for name, _ in fields}})
    declared = sorted({*spec.columns, *spec.secret_fields, UNDECLARED_MARK})
    secrets = sorted(spec.secret_fields)
    # Parse once into one JSON value per declared field; keep the record for the undeclared ones.
    parsed = (
        f"SELECT {RECORD} AS __rec, json_transform({RECORD}, {quote_literal(structure)}) AS __s FROM {source}"
    )
    values = ", ".join(
        f"__s[{quote_literal(name)}] AS {v}, "
        + (f"json_type({v})" if kind != "json" else "NULL::VARCHAR")
        + f" AS {t}"
        for (name, kind), v, t in zip(fields, raw, kinds, strict=True)
    )
    keys = f"CASE WHEN __s[{quote_literal(UNDECLARED_MARK)}] THEN json_keys(__rec) ELSE []::VARCHAR[] END AS __keys"
    typed = ", ".join(
        f"{_typed(kind, v, t)} AS {quote_ident('__c' + str(i))}"
        for i, ((_, kind), v, t) in enumerate(zip(fields, raw, kinds, strict=True))
    )
    checked = (
        f"SELECT __rec, __keys, {', '.join(raw)}, {', '.join(kinds)}, {typed} "
        f"FROM (SELECT __rec, {keys}, {values} FROM ({parsed}))"
    )
    typed_fields = [(i, name, kind) for i, (name, kind) in enumerate(fields) if kind != "json"]
    # Most rows carry only native values: their per-field bookkeeping is skipped (`__odd` false).
    odd = (
        " OR ".join(
            f"(__t{i} IS NOT NULL AND (__t{i} NOT IN {_NATIVE.get(kind, _NATIVE['str'])} OR __c{i} IS NULL))"
            for i, _, kind in typed_fields
        )
        or "false"
    )
    misfit = {i: f"(__t{i} IS NOT NULL AND __c{i} IS NULL)" for i, _, _ in typed_fields}
    converted = (
        " + ".join(
            f"(__t{i} NOT IN {_NATIVE[kind]} AND __c{i} IS NOT NULL)::INTEGER"
            for i, _, kind in typed_fields
            if kind in _NATIVE
        )
        or "0"
    )
    misfit_names = ", ".join(
        f"CASE WHEN {misfit[i]} THEN {quote_literal(name)} END" for i, name, _ in typed_fields
    )
    misfit_pairs = ", ".join(
        f"CASE WHEN {misfit[i]} THEN {quote_literal(json.dumps(name) + ':')} || __v{i}::VARCHAR END"
        for i, name, _ in typed_fields
    )
    drop_declared = quote_literal(json.dumps(dict.fromkeys(declared)))
    declared_list = _list(declared)
    unknown = f"list_filter(__keys, lambda k: NOT list_contains({declared_list}, k))"
    extra = (
        # Both parts are compact JSON objects with disjoint keys: join their members.
        f"CASE WHEN __misfit_members = '' AND len({UNKNOWN}) = 0 THEN NULL "
        f"WHEN len({UNKNOWN}) = 0 THEN '{{' || __misfit_members || '}}' "
        f"WHEN __misfit_members = '' THEN json_merge_patch(__rec, {drop_declared})::VARCHAR "
        f"ELSE '{{' || __misfit_members || ',' || substr(json_merge_patch(__rec, {drop_declared})::VARCHAR, 2) "
        "END::JSON"
    )
    columns = ", ".join(f"__c{i} AS {quote_ident(snake_case(name))}" for i, (name, _) in enumerate(fields))
    secret_count = (
        f"len(list_filter(__keys, lambda k: list_contains({_list(secrets)}, k)))" if secrets else "0"
    )
    return (
        f"SELECT {columns}, {extra} AS {quote_ident(EXTRA_COLUMN)}, "
        f"{quote_literal(synced_at)}::TIMESTAMPTZ AS {quote_ident(SYNCED_AT_COLUMN)}, "
        f"{CONVERTED}, {MISFITS}, {UNKNOWN}, {SECRETS} FROM ("
        f"SELECT *, CASE WHEN __odd THEN concat_ws(',', {misfit_pairs or 'NULL'}) ELSE '' END AS __misfit_members, "
        f"CASE WHEN __odd THEN {converted} ELSE 0 END AS {CONVERTED}, "
        f"CASE WHEN __odd THEN list_filter([{misfit_names}]::VARCHAR[], lambda n: n IS NOT NULL) "
        f"ELSE []::VARCHAR[] END AS {MISFITS}, "
        f"{unknown} AS {UNKNOWN}, {secret_count} AS {SECRETS} "
        f"FROM (SELECT *, {odd} AS __odd FROM ({checked})))"
    )


def _list(names: list[str]) -> str:
    return "[" + ", ".join(quote_literal(name) for name in names) + "]::VARCHAR[]"
