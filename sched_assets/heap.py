"""Keep the garbage collector off the objects a run process already holds while a sync allocates.

A run process holds Dagster's and the definitions' objects (hundreds of thousands, all long-lived).
A sync allocates millions of short-lived ones (each page's records), which trigger collections, and
every full collection walks the whole heap with the GIL held: measured 1.8 s of a 100,000-booking sync.
Freezing the heap first (`gc.freeze`) leaves those collections only the sync's own objects to walk.

At exit Python collects the whole heap again, several times while it tears the modules down: ~0.5-0.8 s
of a 100,000-booking `dagster asset materialize` (docs/performance.md). `skip_final_collection` freezes
the heap at the end of exit instead; the operating system takes the memory back with the process.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Exclude every object alive now from collections until the block ends; then they count again."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_exit_hook_registered = False


def skip_final_collection() -> None:
    """Freeze the heap at exit (registered once per process, when the definitions are imported).

    Exit handlers run last-in, first-out, so those registered later (the warehouse's release, the typing
    database's close, the spill's removal) run before the freeze, and those registered earlier (logging's
    flush among them) after it, unaffected. Only finalizers of objects caught in reference cycles are
    skipped, which Python never promises to run at exit."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(gc.freeze)
