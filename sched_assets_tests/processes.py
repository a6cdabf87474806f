"""Child processes in their own process group, and stopping the whole group.

A command such as `uv run dagster ...` or `dagster dev` is a tree of processes (the launcher, the
interpreter, code servers, step workers). Started with `start_new_session=True` the tree shares one
process group whose id is the leader's pid, so one `killpg` reaches all of it::

    with process_group(["dagster", "dev"], env=env, stdout=log, default_signals=True) as process:
        ...  # on exit: SIGTERM, a grace period, then SIGKILL to whatever is left of the group

Plain standard library; used by the tests, `benchmarks/` and `docs/make_screenshot.py`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

Stream = int | IO[Any] | None  # what Popen takes for stdin/stdout/stderr: a file, PIPE, DEVNULL, STDOUT


def reset_signals() -> None:
    """Restore the default SIGINT/SIGTERM handlers in the child (a `preexec_fn`).

    A shell that starts a job in the background leaves SIGINT/SIGTERM ignored, and ignored signals
    survive exec: the child (e.g. `dagster dev`) would then ignore its Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_group(
    command: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    text: bool = False,
    default_signals: bool = False,
) -> subprocess.Popen[Any]:
    """Start `command` as the leader of a new session and process group (pgid == its pid).

    `default_signals` restores default SIGINT/SIGTERM handling in the child (see `reset_signals`).
    """
    return subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=text,
        start_new_session=True,
        preexec_fn=reset_signals if default_signals else None,
    )


def stop_group(
    process: subprocess.Popen[Any],
    grace: float = 5.0,
    *,
    terminate: Literal["group", "leader"] = "group",
    wait: float = 30.0,
) -> int | None:
    """Stop a process started by `start_group` and everything left in its group; return its exit code.

    While the leader runs, it gets SIGTERM (`terminate="group"`: every process of the group gets it;
    `"leader"`: only the leader, for programs like `dagster dev` that shut their children down
    themselves) and up to `grace` seconds to exit. Then the whole group gets SIGKILL, which also
    reaches children the leader left behind, and the leader is reaped (up to `wait` seconds).
    `grace=0` is a plain `kill -9` of the group.
    """
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    if grace > 0 and process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if terminate == "leader":
                process.send_signal(signal.SIGTERM)
            else:
                os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=wait)
    return process.returncode


@contextlib.contextmanager
def process_group(
    command: Sequence[str | os.PathLike[str]],
    *,
    grace: float = 5.0,
    terminate: Literal["group", "leader"] = "group",
    **options: Any,
) -> Iterator[subprocess.Popen[Any]]:
    """`start_group(command, **options)`; on exit (also on errors) `stop_group(process, grace, ...)`."""
    process = start_group(command, **options)
    try:
        yield process
    finally:
        stop_group(process, grace, terminate=terminate)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for a server started with `--port`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
