"""Serve a demo account over HTTP: `uv run python -m sched_assets.demo --port 8000 --bookings 100000`.

`--shape nested` serves a second data set with far more nested bookings (many attendees, seated
bookings, custom answers of mixed types, rich metadata), so benchmarks do not tune to one shape.

`--accounts 3` serves three accounts instead (demo-001..demo-003), one key each, each with its own
data, rate-limit window and faults; `--bookings` is then the mean per account, and
`--write-accounts accounts.yaml` writes the accounts file and the keys (accounts.env) for the sync.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sched_assets.demo.accounts import DemoAccountKey, accounts_env, demo_accounts, write_accounts_file
from sched_assets.demo.app import DEFAULT_RESIDENT_ACCOUNTS, DEMO_API_KEY, DemoApi
from sched_assets.demo.faults import Faults
from sched_assets.demo.generator import SHAPES, DemoAccount
from sched_assets.demo.ratelimit import RateLimit
from sched_assets.demo.server import DemoServer, serve


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
    p.add_argument("--api-key", default=None, help=f"the one account's key (default {DEMO_API_KEY})")
    p.add_argument("--root", default="/v2", help="API root path (e.g. /v1 for guide-style paths)")
    p.add_argument("--rate-limit", default="none", help="LIMIT/WINDOW/BLOCK, e.g. 120/60/60 (default: none)")
    p.add_argument(
        "--prerender",
        action="store_true",
        help="render every booking's JSON at start, so serving costs little (benchmarks measure the clients)",
    )
    many = p.add_argument_group("many accounts (one key each; default: one account)")
    many.add_argument(
        "--accounts",
        type=int,
        default=None,
        metavar="N",
        help="serve N accounts (PREFIX-001...); --bookings is the mean per account, --rate-limit per key",
    )
    many.add_argument("--account-prefix", default="demo", help="account names: PREFIX-001, PREFIX-002, ...")
    many.add_argument(
        "--write-accounts",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the accounts file (e.g. accounts.yaml, base_url = this server) and its keys (accounts.env)",
    )
    many.add_argument(
        "--resident",
        type=int,
        default=DEFAULT_RESIDENT_ACCOUNTS,
        metavar="N",
        help="accounts kept built at once (least recently used ones are rebuilt on demand); 0 = all",
    )
    faults = p.add_argument_group("faults (all off by default; with --accounts each account rolls its own)")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.accounts is None and args.write_accounts is not None:
        parser.error("--write-accounts needs --accounts N")
    if args.accounts is not None and args.api_key is not None:
        parser.error("--api-key is for one account; with --accounts each key is derived from its name")
    if args.accounts is not None and args.accounts < 1:
        parser.error("--accounts must be at least 1")
    # Stop on Ctrl-C / SIGINT even when started as a background job (which inherits SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.accounts is not None:
        return _serve_many(args)
    faults = faults_from_args(args)
    started = time.perf_counter()
    account = DemoAccount(
        bookings=args.bookings, event_types=args.event_types, seed=args.seed, shape=args.shape
    )
    if args.prerender:
        account.prerender()
    api = DemoApi(
        account,
        api_key=args.api_key or DEMO_API_KEY,
        root=args.root,
        faults=faults,
        rate_limit=RateLimit.parse(args.rate_limit),
    )
    server = serve(api, port=args.port, host=args.host, timeout_stall=args.timeout_stall)
    took = time.perf_counter() - started

    def announce() -> None:
        print(
            f"Demo API: {server.url}  ({account.booking_count} {args.shape} bookings, built in {took:.1f}s)"
        )
        print(f"API key:  {api.api_key}")
        print(f"Admin:    {server.base_url}/_demo/stats")

    _run(server, announce)
    return 0


def _serve_many(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        keys = demo_accounts(
            args.accounts,
            args.bookings,
            prefix=args.account_prefix,
            seed=args.seed,
            shape=args.shape,
            event_types=args.event_types,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    api = DemoApi(
        accounts=keys,
        root=args.root,
        faults=faults_from_args(args),
        rate_limit=RateLimit.parse(args.rate_limit),
        resident_accounts=args.resident or None,
    )
    if args.prerender:  # every account built and rendered now, and kept: fast serving, memory for all
        for key in keys:
            api.account_for(key.name).prerender()
    server = serve(api, port=args.port, host=args.host, timeout_stall=args.timeout_stall)
    took = time.perf_counter() - started
    _run(server, lambda: _announce_many(args, keys, server, took))
    return 0


def _announce_many(
    args: argparse.Namespace, keys: list[DemoAccountKey], server: DemoServer, took: float
) -> None:
    total = sum(key.bookings for key in keys)
    built = "built and rendered" if args.prerender else "each built on its first request; ready"
    print(
        f"Demo API: {server.url}  ({len(keys)} accounts, {total} {args.shape} bookings in all, "
        f"{built} in {took:.1f}s)"
    )
    limit = RateLimit.parse(args.rate_limit)
    print(
        f"Accounts: {_names(keys)}; "
        + (f"rate limit {args.rate_limit} per key" if limit else "no rate limit")
    )
    if args.write_accounts is not None:
        files = write_accounts_file(keys, args.write_accounts, base_url=server.url)
        print(f"Accounts file: {files.accounts.resolve()}  (SCHED_ACCOUNTS_FILE; base_url {server.url})")
        print(f"Keys:          {files.env.resolve()}  (SCHED_ACCOUNTS_FILE and one SCHED_API_KEY__* each)")
        print(
            f"Use them:      set -a; . {files.env.resolve()}; set +a   # or copy it to .env for `dagster dev`"
        )
        print(
            "               uv run dagster asset materialize -m sched_assets.definitions --select '*' "
            f"--partition {keys[0].name}"
        )
    else:
        shown = keys if len(keys) <= 5 else keys[:3]
        print("Keys (export them, or pass --write-accounts accounts.yaml to write them to accounts.env):")
        for line in accounts_env(shown).splitlines()[1:]:
            print(f"  {line}")
        if len(shown) < len(keys):
            print(f"  ... and {len(keys) - len(shown)} more")
    print(
        f"Admin:    {server.base_url}/_demo/stats  (?account=NAME for one; {server.base_url}/_demo/accounts)"
    )


def _names(keys: list[DemoAccountKey]) -> str:
    return keys[0].name if len(keys) == 1 else f"{keys[0].name} ... {keys[-1].name}"


def _run(server: DemoServer, announce: Callable[[], None]) -> None:
    """Print what is served, then serve until Ctrl-C / SIGINT (which may arrive while printing)."""
    try:
        announce()
        sys.stdout.flush()  # a parent process reads the URL from our stdout
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
