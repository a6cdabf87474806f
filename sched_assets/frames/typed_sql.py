"""The SQL that types raw API records (one JSON object per row) into a resource's declared columns.

DuckDB does the typing: each record is parsed once (`json_transform` to one JSON value per declared
field), each value is checked against its column's kind and converted when that loses nothing
("30" -> 30 for an integer column); otherwise the column gets NULL and the value is kept verbatim
in `_extra`, next to the fields the spec does not declare. Secret fields are dropped from `_extra`
(the client strips them before a record reaches disk; this is the second lock).

Listing a record's keys costs as much as typing it, and almost every record has only declared fields.
So a record with any other field must carry `UNDECLARED_MARK: true` (`frames.spill` adds it, after a
set comparison per record); only marked records have their keys listed. A batch with no marked
record can skip most checks (`trusted_select`): a scan of its file (`suspects_sql`) tells which fields
hold a value of another JSON type anywhere, and only those are checked.

Plain string building: no DuckDB import here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Set as AbstractSet

from sched_assets.api.specs import EndpointSpec, Kind
from sched_assets.frames.columns import DUCKDB_TYPES, EXTRA_COLUMN, SYNCED_AT_COLUMN, snake_case
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

    Every value is checked: the exact path, for any batch. `synced_at` is an ISO 8601 UTC instant
    stamped on every row.
    """
    structure = json.dumps({UNDECLARED_MARK: "BOOLEAN", **{name: "JSON" for name in spec.columns}})
    # Parse once into one JSON value per declared field; keep the record for the undeclared ones.
    parsed = (
        f"SELECT {RECORD} AS __rec, json_transform({RECORD}, {quote_literal(structure)}) AS __s FROM {source}"
    )
    keys = f"CASE WHEN __s[{quote_literal(UNDECLARED_MARK)}] THEN json_keys(__rec) ELSE []::VARCHAR[] END"
    raw = {name: f"__s[{quote_literal(name)}]" for name in spec.columns}
    return _typed_rows(spec, parsed, keys, raw, {}, synced_at)


def trusted_select(
    spec: EndpointSpec, path: str, max_object_bytes: int, synced_at: str, suspects: AbstractSet[str]
) -> str:
    """`typed_select` for a batch file (a JSON array) in which no record has an undeclared field and
    no field outside `suspects` has a value of another JSON type than its kind's own (`suspects_sql`).

    DuckDB's JSON reader types the other fields itself, in one parse (~20% less CPU than
    `typed_select` on flat records); `suspects` and `json` fields are read as JSON and checked as
    `typed_select` checks them.
    A timestamp that does not parse raises instead of becoming a misfit: the caller then types the
    batch with `typed_select`. Same columns, values and bookkeeping as `typed_select` for such a batch.
    """
    read: dict[str, str] = {}
    raw: dict[str, str] = {}
    native: dict[str, str] = {}
    for name, kind in spec.columns.items():
        column = quote_ident(name)
        if kind == "json" or name in suspects:
            read[name], raw[name] = "JSON", column
        elif kind == "ts":
            read[name] = "VARCHAR"
            value = f"TRY_CAST(trim({column}) AS TIMESTAMPTZ)"
            native[name] = (
                f"CASE WHEN {column} IS NOT NULL AND {value} IS NULL "
                f"THEN error({quote_literal(f'{name}: a timestamp that does not parse')}) ELSE {value} END"
            )
        else:
            read[name], native[name] = DUCKDB_TYPES[kind], column
    columns = "{" + ", ".join(f"{quote_literal(name)}: {quote_literal(t)}" for name, t in read.items()) + "}"
    source = (
        f"SELECT NULL::JSON AS __rec, * FROM read_json({quote_literal(path)}, format = 'array', "
        f"columns = {columns}, maximum_object_size = {int(max_object_bytes)})"
    )
    return _typed_rows(spec, source, None, raw, native, synced_at)


def suspects_sql(spec: EndpointSpec, path: str, known: frozenset[str] = frozenset()) -> str | None:
    """SELECT of the distinct `"field":x` texts in a batch file where a declared field (at any depth:
    a nested key of the same name only adds a suspect) starts a value of another JSON type than its
    kind's own, or a number its column may not hold as is. The file is compact JSON written by the
    spill, so a top-level field with such a value always matches. RE2 scans the file in one pass.

    Fields in `known` (suspects of earlier batches) are not looked for: a value that matches on every
    record (nested bookings' `bookingFieldsResponses.location` objects) costs a list entry each, while
    a file without a match costs one scan that lists nothing (NULL). None: every field is known.
    """
    pattern = _suspect_pattern(spec, known)
    if pattern is None:
        return None
    literal = quote_literal(pattern)
    return (
        f"SELECT CASE WHEN regexp_matches(content, {literal}) THEN "
        f"list_distinct(regexp_extract_all(content, {literal})) END FROM read_text({quote_literal(path)})"
    )


def suspect_field(match: str) -> str:
    """The field name of one `suspects_sql` match (`"location":{` -> `location`)."""
    return match[1 : match.index('":')]


# Value starts that are not simply the kind's own JSON type (null is fine for every kind).
_NOT_NATIVE: dict[Kind, str] = {
    # not a number; 19+ digits (may not fit BIGINT); a fraction or exponent
    "int": r"(?:[^-0-9n]|-?[0-9]{19}|-?[0-9]+[.eE])",
    # not a number; an integer (converted, or beyond 2**53); a three-digit exponent
    "float": r"(?:[^-0-9n]|-?[0-9]+[,}]|-?[0-9.]+[eE][-+]?[0-9]{3})",
    "bool": r"[^tfn]",
    "str": r'[^"n]',
    "ts": r'[^"n]',
}


def _suspect_pattern(spec: EndpointSpec, known: frozenset[str] = frozenset()) -> str | None:
    by_kind: dict[Kind, list[str]] = {}
    for name, kind in spec.columns.items():
        if kind != "json" and name not in known:
            by_kind.setdefault(kind, []).append(re.escape(name))
    return "|".join(f'"(?:{"|".join(names)})":{_NOT_NATIVE[kind]}' for kind, names in by_kind.items()) or None


def _typed_rows(
    spec: EndpointSpec,
    source: str,
    keys: str | None,
    raw: dict[str, str],
    native: dict[str, str],
    synced_at: str,
) -> str:
    """The typed columns and bookkeeping over `source` (columns `__rec` and what `raw`/`native` name).

    `raw`: field -> SQL of its JSON value, checked against its kind; `native`: field -> SQL of its
    already-typed value (trusted: no conversion, no misfit). `keys`: SQL of the record's key list
    (empty unless it has undeclared fields), or None when no record has undeclared fields.
    """
    fields = list(spec.columns.items())
    checked = [(i, name, kind) for i, (name, kind) in enumerate(fields) if name in raw]
    values = ", ".join(
        f"{raw[name]} AS __v{i}, "
        + (f"json_type(__v{i})" if kind != "json" else "NULL::VARCHAR")
        + f" AS __t{i}"
        if name in raw
        else f"{native[name]} AS __c{i}"
        for i, (name, kind) in enumerate(fields)
    )
    typed = ", ".join(f"{_typed(kind, f'__v{i}', f'__t{i}')} AS __c{i}" for i, _, kind in checked)
    typed_fields = [(i, name, kind) for i, name, kind in checked if kind != "json"]
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
    if keys is None:  # no undeclared fields: no per-row key lists to filter
        keys, unknown, secret_count = "NULL", "[]::VARCHAR[]", "0"
        extra = "CASE WHEN __misfit_members = '' THEN NULL ELSE '{' || __misfit_members || '}' END::JSON"
    else:
        declared = sorted({*spec.columns, *spec.secret_fields, UNDECLARED_MARK})
        secrets = sorted(spec.secret_fields)
        drop_declared = quote_literal(json.dumps(dict.fromkeys(declared)))
        unknown = f"list_filter(__keys, lambda k: NOT list_contains({_list(declared)}, k))"
        secret_count = (
            f"len(list_filter(__keys, lambda k: list_contains({_list(secrets)}, k)))" if secrets else "0"
        )
        extra = (
            # Both parts are compact JSON objects with disjoint keys: join their members.
            f"CASE WHEN __misfit_members = '' AND len({UNKNOWN}) = 0 THEN NULL "
            f"WHEN len({UNKNOWN}) = 0 THEN '{{' || __misfit_members || '}}' "
            f"WHEN __misfit_members = '' THEN json_merge_patch(__rec, {drop_declared})::VARCHAR "
            f"ELSE '{{' || __misfit_members || ',' || substr(json_merge_patch(__rec, {drop_declared})::VARCHAR, 2) "
            "END::JSON"
        )
    columns = ", ".join(f"__c{i} AS {quote_ident(snake_case(name))}" for i, (name, _) in enumerate(fields))
    with_typed = f"SELECT *, {typed} FROM" if typed else "SELECT * FROM"
    return (
        f"SELECT {columns}, {extra} AS {quote_ident(EXTRA_COLUMN)}, "
        f"{quote_literal(synced_at)}::TIMESTAMPTZ AS {quote_ident(SYNCED_AT_COLUMN)}, "
        f"{CONVERTED}, {MISFITS}, {UNKNOWN}, {SECRETS} FROM ("
        f"SELECT *, CASE WHEN __odd THEN concat_ws(',', {misfit_pairs or 'NULL'}) ELSE '' END AS __misfit_members, "
        f"CASE WHEN __odd THEN {converted} ELSE 0 END AS {CONVERTED}, "
        f"CASE WHEN __odd THEN list_filter([{misfit_names}]::VARCHAR[], lambda n: n IS NOT NULL) "
        f"ELSE []::VARCHAR[] END AS {MISFITS}, "
        f"{unknown} AS {UNKNOWN}, {secret_count} AS {SECRETS} "
        f"FROM (SELECT *, {odd} AS __odd FROM ({with_typed} "
        f"(SELECT __rec, {keys} AS __keys, {values} FROM ({source})))))"
    )


def _list(names: list[str]) -> str:
    return "[" + ", ".join(quote_literal(name) for name in names) + "]::VARCHAR[]"
