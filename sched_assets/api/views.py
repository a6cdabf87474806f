"""Pages decoded for the spill: records whose declared fields stay the server's JSON text.

Parsing a page into Python objects (`orjson.loads`) and writing it back (`orjson.dumps`) was the
largest cost the sync paid under the GIL: 0.5 s per 1,000 standard pages, 1.6 s nested. A sync only
needs a few values of each record in Python (the key, the keyset fields paging follows), so msgspec
decodes a page into `RecordView`s: those fields as Python values, every other declared field as its
JSON text (`msgspec.Raw`, checked as JSON but never built into objects), and one `encode` writes them
for the spill, compact at the top level (what `frames.typed_sql`'s scans expect). DuckDB then parses
each value once, as it would have anyway, and stores it the same (JSON values are re-serialized).

Only the documented shape with declared fields fits: a page with an undeclared field, another shape,
text that is not UTF-8 or JSON msgspec refuses decodes to None, and the client reads it the general
way (dicts, the undeclared-field mark, legacy shapes, errors).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from sched_assets.api.specs import EndpointSpec

_SELECTOR = "data.*"  # the records are the items of the body's `data` list


class RecordView(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One record with declared fields only; read like a dict with `get`, compared field by field."""

    _attrs: ClassVar[dict[str, str]] = {}  # API field name -> attribute (set per resource)

    def get(self, name: str, default: Any = None) -> Any:
        attr = self._attrs.get(name)
        value = getattr(self, attr) if attr is not None else msgspec.UNSET
        if value is msgspec.UNSET:
            return default
        if isinstance(value, msgspec.Raw):  # a field paging does not usually ask for
            return msgspec.json.decode(memoryview(value))  # integers beyond 64 bits stay exact
        return value


@dataclass(frozen=True)
class DecodedPage:
    """A response body read as views: the records, and the `pagination` member (None if absent)."""

    records: list[RecordView]
    pagination: Any


def page_decoder(
    spec: EndpointSpec, *, values: Sequence[str] = ()
) -> Callable[[bytes], DecodedPage | None] | None:
    """A decoder of `spec`'s pages into views, or None when the resource does not fit this path (another
    selector, secret fields to strip). `values`: fields decoded to Python values besides the key."""
    if spec.selector != _SELECTOR or spec.secret_fields:
        return None
    wanted = tuple(dict.fromkeys((*spec.primary_key, *values)))
    return _decoder(tuple(spec.columns), wanted)


@functools.cache
def _decoder(names: tuple[str, ...], wanted: tuple[str, ...]) -> Callable[[bytes], DecodedPage | None]:
    attrs = {name: f"f{i}" for i, name in enumerate(names)}  # any field name, as a valid attribute
    view = msgspec.defstruct(
        "RecordView",
        [(attrs[name], Any if name in wanted else msgspec.Raw, msgspec.UNSET) for name in names],
        bases=(RecordView,),
        rename={attr: name for name, attr in attrs.items()},
        namespace={"_attrs": attrs},
    )
    body = msgspec.defstruct("Body", [("data", list[view]), ("pagination", Any, None)])
    decoder = msgspec.json.Decoder(body)

    def decode(content: bytes) -> DecodedPage | None:
        # Raw values are not checked for UTF-8; the general path refuses text that is not.
        if not content.isascii():
            try:
                content.decode()
            except UnicodeDecodeError:
                return None
        try:
            page = decoder.decode(content)
        except msgspec.MsgspecError:
            return None
        return DecodedPage(page.data, page.pagination)

    return decode


_encoder = msgspec.json.Encoder()


def encode(records: Sequence[RecordView]) -> bytes:
    """The records as one compact JSON array (absent fields left out, values as the server sent them)."""
    return _encoder.encode(records)
