"""Where the sync step's time goes: its phases timed inside one process, with the CPU they use.

    uv run python benchmarks/step_phases.py --bookings 100000 --shape standard --repeats 3

Starts the demo API (a fresh one per repeat, pre-rendered pages), materializes the raw and history
assets in this process (`dg.materialize`, an ephemeral instance, a fresh DuckDB file) and prints one
JSON line per repeat: the step's wall time, the fetch (read + typing) with our process's and the demo
server's CPU seconds during it, the typing threads' time, each table write (open, write, close) and
the peak RSS of this process in the fetch and in the writes. Timers wrap the functions named in
`PHASES`; they add microseconds per call. `benchmarks/run.py` gives the whole-process numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any

import psutil

from benchmarks.measure import tree_cpu_s
from benchmarks.servers import DemoServer

# (module, owner attribute or None, function): timed under the function's name.
PHASES = [
    ("sched_assets.frames.spill", "RecordSpill", "_type_batch"),
    ("sched_assets.storage.write", None, "execute_writes"),
    ("sched_assets.storage.write", None, "_commit"),
    ("sched_assets.storage.write", None, "plan_history"),  # as write.py calls them
    ("sched_assets.storage.write", None, "record_history"),
    ("sched_assets.storage.warehouse", "Warehouse", "write"),
    ("sched_assets.defs.sources", None, "history_output"),
]


class Recorder:
    """Seconds per call of the timed functions, and the peak RSS per phase of the step."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.phase = "start"
        self.peak_mb: dict[str, int] = {}
        self._me = psutil.Process()
        threading.Thread(target=self._sample, daemon=True).start()

    def wrap(self, owner: Any, name: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name].append(time.perf_counter() - started)

        setattr(owner, name, timed)

    def _sample(self) -> None:
        while True:
            rss = self._me.memory_info().rss >> 20
            self.peak_mb[self.phase] = max(self.peak_mb.get(self.phase, 0), rss)
            time.sleep(0.02)


def install(recorder: Recorder, server: list[DemoServer]) -> None:
    import importlib

    import sched_assets.defs.sources as sources

    for module_name, owner_name, name in PHASES:
        module = importlib.import_module(module_name)
        recorder.wrap(getattr(module, owner_name) if owner_name else module, name)
    fetch_all = sources.fetch_all

    @functools.wraps(fetch_all)
    def timed_fetch(*args: Any, **kwargs: Any) -> Any:
        me, demo = psutil.Process(), server[0]
        ours, theirs = tree_cpu_s(me), demo.cpu_seconds()
        started, recorder.phase = time.perf_counter(), "fetch"
        try:
            return fetch_all(*args, **kwargs)
        finally:
            recorder.seconds["fetch_all"].append(time.perf_counter() - started)
            recorder.seconds["fetch_cpu_ours"].append(tree_cpu_s(me) - ours)
            recorder.seconds["fetch_cpu_server"].append(demo.cpu_seconds() - theirs)
            recorder.phase = "write"

    sources.fetch_all = timed_fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--shape", default="standard", help="demo account shape: standard or nested")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import dagster as dg

    recorder, server = Recorder(), []
    install(recorder, server)
    from sched_assets.definitions import defs

    for _ in range(args.repeats):
        demo = DemoServer(args.bookings, shape=args.shape)
        demo.start()
        server[:] = [demo]
        home = tempfile.mkdtemp(prefix="sched_step_phases_")
        try:
            os.environ.update(
                SCHED_API_BASE_URL=demo.base_url,
                SCHED_API_KEY=demo.api_key,
                SCHED_DUCKDB_PATH=f"{home}/warehouse.duckdb",
                DAGSTER_HOME=home,
            )
            definitions = defs()
            keys = [
                k
                for k in definitions.resolve_asset_graph().get_all_asset_keys()
                if k.path[0] in ("raw", "history")
            ]
            recorder.seconds.clear()
            recorder.peak_mb.clear()
            started = time.perf_counter()
            dg.materialize(
                [definitions.get_assets_def(keys[0])],
                resources=definitions.resources,
                selection=keys,
                instance=dg.DagsterInstance.ephemeral(),
                raise_on_error=True,
            )
            line = {"materialize_s": round(time.perf_counter() - started, 2)}
            line |= {name: round(sum(values), 3) for name, values in recorder.seconds.items()}
            line["writes_s"] = [round(v, 3) for v in recorder.seconds.get("write", [])]
            line["peak_mb"] = dict(recorder.peak_mb)
            print(json.dumps(line), flush=True)
        finally:
            demo.stop()
            shutil.rmtree(home, ignore_errors=True)  # a warehouse of ~340 MB per nested repeat
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
