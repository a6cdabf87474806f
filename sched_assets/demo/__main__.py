"""Serve a demo account over HTTP: `uv run python -m sched_assets.demo --port 8000 --bookings 100000`.

`--shape nested` serves a second data set with far more nested bookings (many attendees, seated
bookings, custom answers of mixed types, rich metadata), so benchmarks do not tune to one shape.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from sched_assets.demo.app import DEMO_API_KEY, DemoApi
from sched_assets.demo.faults import Faults
from sched_assets.demo.generator import SHAPES, DemoAccount
from sched_assets.demo.ratelimit import RateLimit
from sched_assets.demo.server import serve


def _fail_status(text: str) -> tuple[str, int]:
    name, _, status = text.partition("=")
    if not name or not status.isdigit():
        raise argparse.ArgumentTypeError(f"expected RESOURCE=STATUS (e.g. bookings=403), got {text!r}")
    return name, int(status)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sched_assets.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    p.add_argument("--bookings", type=int, default=2000)
    p.add_argument("--event-types", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--shape",
        choices=SHAPES,
        default="standard",
        help="booking data set: standard, or nested (3-12 attendees, ~45%% seated, many custom answers)",
    )
    p.add_argument("--api-key", default=DEMO_API_KEY)
    p.add_argument("--root", default="/v2", help="API root path (e.g. /v1 for guide-style paths)")
    p.add_argument("--rate-limit", default="none", help="LIMIT/WINDOW/BLOCK, e.g. 120/60/60 (default: none)")
    p.add_argument(
        "--prerender",
        action="store_true",
        help="render every booking's JSON at start, so serving costs little (benchmarks measure the clients)",
    )
    faults = p.add_argument_group("faults (all off by default)")
    faults.add_argument("--fault-seed", type=int, default=0)
    faults.add_argument("--error-rate", type=float, default=0.0)
    faults.add_argument("--html-fraction", type=float, default=0.5)
    faults.add_argument("--latency", type=float, default=0.0)
    faults.add_argument("--spike-rate", type=float, default=0.0)
    faults.add_argument("--spike-latency", type=float, default=2.0)
    faults.add_argument("--truncate-rate", type=float, default=0.0)
    faults.add_argument("--reset-rate", type=float, default=0.0)
    faults.add_argument("--timeout-rate", type=float, default=0.0)
    faults.add_argument("--timeout-stall", type=float, default=30.0, help="seconds a 'timeout' fault stalls")
    faults.add_argument(
        "--fail-status", type=_fail_status, action="append", default=[], metavar="RESOURCE=STATUS"
    )
    faults.add_argument("--fail-after", type=int, default=None)
    faults.add_argument("--ignore-skip", action="store_true")
    faults.add_argument("--overstate-total", type=int, default=0)
    faults.add_argument("--drift", action="store_true")
    faults.add_argument("--max-take", type=int, default=None, help="bookings: serve at most N per page")
    faults.add_argument(
        "--no-legacy-event-types",
        action="store_true",
        help="GET /event-types always answers in the documented shape, header or not",
    )
    faults.add_argument("--fail-team-ids", default="", help="comma list: team event types answer 500")
    faults.add_argument("--reset-header", choices=("seconds", "epoch"), default="seconds")
    faults.add_argument("--fault-resources", default="", help="comma list: restrict random faults to these")
    live = p.add_argument_group("live changes (the account changes while it is read; off by default)")
    live.add_argument("--edits-per-page", type=float, default=0.0, help="bookings edited after each page")
    live.add_argument(
        "--deletes-per-page", type=float, default=0.0, help="already-read bookings deleted after each page"
    )
    live.add_argument(
        "--edit-targets", choices=("any", "unread"), default="any", help="unread: rows after the page"
    )
    live.add_argument("--live-changes-after", type=int, default=0, help="requests served before they start")
    return p


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The `Faults` the parsed command line asks for."""
    return Faults(
        seed=args.fault_seed,
        error_rate=args.error_rate,
        html_fraction=args.html_fraction,
        latency=args.latency,
        spike_rate=args.spike_rate,
        spike_latency=args.spike_latency,
        truncate_rate=args.truncate_rate,
        reset_rate=args.reset_rate,
        timeout_rate=args.timeout_rate,
        fail_status=dict(args.fail_status),
        fail_after=args.fail_after,
        ignore_skip=args.ignore_skip,
        overstate_total=args.overstate_total,
        drift=args.drift,
        max_take=args.max_take,
        legacy_event_types=not args.no_legacy_event_types,
        fail_team_ids=frozenset(int(t) for t in args.fail_team_ids.split(",") if t.strip()),
        reset_header=args.reset_header,
        resources=frozenset(r for r in args.fault_resources.split(",") if r) or None,
        edits_per_page=args.edits_per_page,
        deletes_per_page=args.deletes_per_page,
        edit_targets=args.edit_targets,
        live_changes_after=args.live_changes_after,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Stop on Ctrl-C / SIGINT even when started as a background job (which inherits SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faults = faults_from_args(args)
    started = time.perf_counter()
    account = DemoAccount(
        bookings=args.bookings, event_types=args.event_types, seed=args.seed, shape=args.shape
    )
    if args.prerender:
        account.prerender()
    api = DemoApi(
        account,
        api_key=args.api_key,
        root=args.root,
        faults=faults,
        rate_limit=RateLimit.parse(args.rate_limit),
    )
    server = serve(api, port=args.port, host=args.host, timeout_stall=args.timeout_stall)
    took = time.perf_counter() - started
    print(f"Demo API: {server.url}  ({account.booking_count} {args.shape} bookings, built in {took:.1f}s)")
    print(f"API key:  {api.api_key}")
    print(f"Admin:    {server.base_url}/_demo/stats")
    sys.stdout.flush()  # a parent process reads the URL from our stdout
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
