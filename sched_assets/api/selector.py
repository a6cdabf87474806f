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


def selector_matches(body: Any, selector: str) -> bool:
    """Whether `body` has the container `selector` reads from: the path up to its first `*` (or all of it).

    `data.*` needs `data` to be a list; `data` needs an object (or list). An empty list matches (a
    resource with no records); a missing or null container, or an object where a list belongs, does not
    (a different response shape, e.g. the legacy grouped event types under `data`).
    """
    node = body
    for part in selector.split(".") if selector else []:
        if part == "*":
            return isinstance(node, list)
        if not isinstance(node, dict) or node.get(part) is None:
            return False
        node = node[part]
    return isinstance(node, dict | list)
