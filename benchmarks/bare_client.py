"""Case (f), the floor: the least a client must do to read every bookings page, as its own process.

Plain `httpx.Client` (HTTP/1.1, 4 connections used by 4 worker threads), bearer auth and the
`cal-api-version` the v2 shapes need, `GET /bookings?take=100&skip=N` offset paging: the first page
gives `pagination.totalItems`, then the remaining pages go 4 at a time. Each body is parsed with
`orjson.loads` (a client has to parse to read the pagination) and only the records are counted: no
validation, no storage, no retries. Our sync step is compared with its read seconds.

    SCHED_API_KEY=... python benchmarks/bare_client.py --base-url http://127.0.0.1:PORT/v2

Prints one JSON line, `{"records": ..., "pages": ..., "read_s": ...}`, where `read_s` runs from the
first request to the last parsed response (interpreter start and imports excluded). It exits 1 on any
HTTP error. Deliberately imports nothing from this project, so the process carries no extra imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

API_VERSION = "2024-08-13"  # the bookings v2 shape (with `pagination`), as dlt and our sync send


def read_all(base_url: str, api_key: str, connections: int, page_size: int) -> dict[str, float]:
    """Read every bookings page; return records, pages and the read seconds."""
    headers = {"Authorization": f"Bearer {api_key}", "cal-api-version": API_VERSION}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, limits=limits, timeout=60.0) as client:

        def page(skip: int) -> dict:
            response = client.get("/bookings", params={"take": page_size, "skip": skip})
            response.raise_for_status()
            return orjson.loads(response.content)

        started = time.perf_counter()
        first = page(0)
        records = len(first["data"])
        total = int(first["pagination"]["totalItems"])
        skips = range(page_size, total, page_size)
        # One worker per connection: `map` keeps `connections` requests in flight until the last page.
        with ThreadPoolExecutor(max_workers=connections) as pool:
            records += sum(len(body["data"]) for body in pool.map(page, skips))
        read_s = time.perf_counter() - started
    return {"records": records, "pages": 1 + len(skips), "read_s": round(read_s, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="API root incl. version, e.g. http://host/v2")
    parser.add_argument(
        "--api-key", default=os.environ.get("SCHED_API_KEY", ""), help="bearer key (default: $SCHED_API_KEY)"
    )
    parser.add_argument("--connections", type=int, default=4, help="connections = worker threads")
    parser.add_argument("--page-size", type=int, default=100, help="`take` per request")
    args = parser.parse_args(argv)
    try:
        result = read_all(args.base_url, args.api_key, args.connections, args.page_size)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
