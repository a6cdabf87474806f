"""Time the API client alone: read every booking of a demo account served on a local port.

    uv run python benchmarks/client_read.py --bookings 100000
    uv run python benchmarks/client_read.py --bookings 20000 --rate-limit 120/60/60

Starts `python -m sched_assets.demo` as its own process (pre-rendered, so the server is not the
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
from pathlib import Path

from benchmarks.servers import DemoServer
from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats
from sched_assets.api.specs import ENDPOINTS_BY_NAME


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--rate-limit", default="none", help="LIMIT/WINDOW/BLOCK, e.g. 120/60/60")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rate_limit = None if args.rate_limit == "none" else args.rate_limit
    with (
        tempfile.TemporaryDirectory(prefix="sched_client_read_") as logs,
        DemoServer(args.bookings, rate_limit=rate_limit, log_dir=Path(logs)) as server,
    ):
        walls = []
        for _ in range(args.repeats):
            server.reset_stats()
            server.reset_limits()
            config = ClientConfig(
                base_url=server.base_url,
                api_key=server.api_key,
                page_size=args.page_size,
                concurrency=args.concurrency,
            )
            stats = SyncStats()
            started = time.perf_counter()
            with SchedApiClient(config) as client:
                records = sum(
                    len(page.records) for page in client.iter_pages(ENDPOINTS_BY_NAME["bookings"], {}, stats)
                )
            walls.append(time.perf_counter() - started)
            served = server.stats()
            line = (
                f"records={records} requests={served['requests']} 429s={served['throttled']} "
                f"wall={walls[-1]:.2f}s"
            )
            if args.rate_limit != "none":
                limit, window = (float(x) for x in args.rate_limit.split("/")[:2])
                floor = (math.ceil(served["requests"] / limit) - 1) * window
                line += (
                    f" floor={floor:.0f}s ratio={walls[-1] / floor:.3f}" if floor else f" floor={floor:.0f}s"
                )
            print(line, flush=True)
        print(f"median wall over {len(walls)} run(s): {statistics.median(walls):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
