"""Record selection with the config guide's selector syntax (`data.eventTypeGroups.*.eventTypes.*`)."""

from __future__ import annotations

from typing import Any


def select_records(body: Any, selector: str) -> list[dict[str, Any]]:
    """Records found at `selector` in a parsed response body.

    `*` means every item of a list (or every value of an object). A missing key or a null on the way
    yields no records rather than an error: a connected calendar whose credential is broken has no
    `calendars` list at all. A selector that ends on a list yields its objects; on an object, that object.
    """
    nodes: list[Any] = [body]
    for part in selector.split(".") if selector else []:
        next_nodes: list[Any] = []
        for node in nodes:
            if part == "*":
                if isinstance(node, list):
                    next_nodes.extend(node)
                elif isinstance(node, dict):
                    next_nodes.extend(node.values())
            elif isinstance(node, dict) and node.get(part) is not None:
                next_nodes.append(node[part])
        nodes = next_nodes
    records: list[dict[str, Any]] = []
    for node in nodes:
        if isinstance(node, dict):
            records.append(node)
        elif isinstance(node, list):
            records.extend(item for item in node if isinstance(item, dict))
    return records
