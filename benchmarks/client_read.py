"""Time the API client alone: read every booking of a demo account served on a local port.

    uv run python benchmarks/client_read.py --bookings 100000
    uv run python benchmarks/client_read.py --bookings 20000 --rate-limit 120/60/60
    uv run python benchmarks/client_read.py --bookings 100000 --order both   # offset vs keyset reads
    uv run python benchmarks/client_read.py --bookings 100000 --order all    # keyset, bare, typed
    uv run python benchmarks/client_read.py --bookings 100000 --shape nested  # the heavier account

Starts `python -m sched_assets.demo --shape S` as its own process (pre-rendered, so the server is not the
bottleneck), reads all bookings with `SchedApiClient` (default settings unless given), and prints
records, requests, 429s, wall seconds and, under a rate limit, the floor `(ceil(requests/120)-1)*60`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.bare_client import read_all
from benchmarks.model import DEFAULT_SHAPE, SHAPES
from benchmarks.servers import DemoServer
from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats
from sched_assets.api.keyset import iter_keyset
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.frames.spill import RecordSpill

BOOKINGS = ENDPOINTS_BY_NAME["bookings"]
# offset: take/skip paging (the old full read); keyset: by position in createdAt order, as a full
# refresh reads now (including the count taken after the read).
# bare: `bare_client.read_all` (the floor: plain httpx, no retries, no pacing), in this process.
# typed: the keyset read with every page spilled and typed as the sync step does (`RecordSpill`).
ORDERS = ("offset", "keyset", "bare", "typed")


def read(client: SchedApiClient, order: str, stats: SyncStats) -> int:
    if order == "offset":
        pages = client.iter_pages(BOOKINGS, {}, stats)
    else:
        pages = iter_keyset(client, BOOKINGS, BOOKINGS.full_order, stats, check_total=True)
    if order != "typed":
        return sum(len(page.records) for page in pages)
    with tempfile.TemporaryDirectory(prefix="sched_client_read_spill_") as directory:
        spill = RecordSpill(BOOKINGS, Path(directory), datetime.now(UTC), cursor_column="updated_at")
        for page in pages:
            spill.add(page.records)
        spill.finish()
        return spill.stats.rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--rate-limit", default="none", help="LIMIT/WINDOW/BLOCK, e.g. 120/60/60")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--order", choices=[*ORDERS, "both", "all"], default="offset")
    parser.add_argument("--shape", choices=SHAPES, default=DEFAULT_SHAPE, help="the demo account's shape")
    args = parser.parse_args()
    orders = {"both": ORDERS[:2], "all": ORDERS[1:]}.get(args.order, (args.order,))
    rate_limit = None if args.rate_limit == "none" else args.rate_limit
    with (
        tempfile.TemporaryDirectory(prefix="sched_client_read_") as logs,
        DemoServer(args.bookings, rate_limit=rate_limit, log_dir=Path(logs), shape=args.shape) as server,
    ):
        walls: dict[str, list[float]] = {order: [] for order in orders}
        # Alternate the orders within each repeat, so drift of the machine hits both alike.
        for order in [o for _ in range(args.repeats) for o in orders]:
            server.reset_stats()
            server.reset_limits()
            config = ClientConfig(
                base_url=server.base_url,
                api_key=server.api_key,
                page_size=args.page_size,
                concurrency=args.concurrency,
            )
            stats = SyncStats()
            started, cpu = time.perf_counter(), time.process_time()
            if order == "bare":
                records = int(
                    read_all(server.base_url, server.api_key, args.concurrency, args.page_size)["records"]
                )
            else:
                with SchedApiClient(config) as client:
                    records = read(client, order, stats)
            walls[order].append(time.perf_counter() - started)
            cpu = time.process_time() - cpu
            served = server.stats()
            line = (
                f"{order}: records={records} requests={served['requests']} 429s={served['throttled']} "
                f"wall={walls[order][-1]:.2f}s cpu={cpu:.2f}s"
            )
            if args.rate_limit != "none":
                limit, window = (float(x) for x in args.rate_limit.split("/")[:2])
                floor = (math.ceil(served["requests"] / limit) - 1) * window
                line += (
                    f" floor={floor:.0f}s ratio={walls[order][-1] / floor:.3f}"
                    if floor
                    else f" floor={floor:.0f}s"
                )
            print(line, flush=True)
        medians = {order: statistics.median(times) for order, times in walls.items()}
        for order, median in medians.items():
            print(f"{order}: median wall over {len(walls[order])} run(s): {median:.2f}s")
        if {"keyset", "offset"} <= medians.keys():
            print(f"keyset / offset (medians): {medians['keyset'] / medians['offset']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
