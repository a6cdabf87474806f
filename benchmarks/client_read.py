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
import subprocess
import sys
import time

import httpx

from sched_assets.api.client import ClientConfig, SchedApiClient, SyncStats
from sched_assets.api.specs import ENDPOINTS_BY_NAME
from sched_assets.demo import DEMO_API_KEY


def start_server(bookings: int, rate_limit: str) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "sched_assets.demo", "--port", "0", "--bookings", str(bookings)]
    command += ["--prerender", "--rate-limit", rate_limit]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("Demo API: "):
        server.kill()
        raise SystemExit(f"demo server did not start: {line!r}")
    return server, line.split()[2]


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
    server, url = start_server(args.bookings, args.rate_limit)
    admin = url.rsplit("/", 1)[0] + "/_demo"
    try:
        walls = []
        for _ in range(args.repeats):
            httpx.post(f"{admin}/reset-stats")
            httpx.post(f"{admin}/reset-limits")
            config = ClientConfig(
                base_url=url, api_key=DEMO_API_KEY, page_size=args.page_size, concurrency=args.concurrency
            )
            stats = SyncStats()
            started = time.perf_counter()
            with SchedApiClient(config) as client:
                records = sum(
                    len(page.records) for page in client.iter_pages(ENDPOINTS_BY_NAME["bookings"], {}, stats)
                )
            walls.append(time.perf_counter() - started)
            served = httpx.get(f"{admin}/stats").json()
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
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
