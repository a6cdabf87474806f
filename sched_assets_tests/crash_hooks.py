"""Test-side crash hook: stop a process inside an open write transaction, so a test can kill -9 it there.

`pause_before_commit(marker)` wraps `sched_assets.storage.write._commit` (the one function that runs
COMMIT) in this process: every write then creates `marker` (holding the pid) and sleeps with its rows
inserted but not committed. The package itself has no such hook.

In a child Python process::

    from sched_assets_tests.crash_hooks import pause_before_commit
    pause_before_commit(marker)
    ...  # any write now pauses before COMMIT

A dagster command, run in-process with the hook installed (same arguments as `dagster ...`)::

    python -m sched_assets_tests.crash_hooks MARKER asset materialize -m sched_assets.definitions --select '*'

The run's writes must happen in that process, which they do with the project's in-process executor.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

PAUSE_SECONDS = 120.0  # far longer than a test needs to notice the marker and kill the process


def pause_before_commit(marker: str | Path, seconds: float = PAUSE_SECONDS) -> None:
    """From now on, in this process, every storage write creates `marker` and sleeps before COMMIT."""
    from sched_assets.storage import write

    commit = write._commit

    def paused_commit(con: duckdb.DuckDBPyConnection) -> None:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(seconds)
        commit(con)

    write._commit = paused_commit


def paused_dagster_command(marker: str | Path, *dagster_args: str) -> list[str]:
    """argv running `dagster <dagster_args>` in one process whose writes pause before COMMIT."""
    return [sys.executable, "-m", __name__, str(marker), *dagster_args]


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m sched_assets_tests.crash_hooks MARKER DAGSTER_ARGS...`"""
    marker, *dagster_args = sys.argv[1:] if argv is None else argv
    pause_before_commit(marker)
    from dagster._cli import main as dagster_main  # what the `dagster` console script runs

    sys.argv = ["dagster", *dagster_args]
    dagster_main()


if __name__ == "__main__":
    main()
