"""What loading the code location costs: `import dagster` alone vs the definitions built on top.

Every run process, code-server load and test subprocess imports `sched_assets.definitions` and calls
`defs()`. This measures, in fresh interpreters (no shared import cache), the median wall time of

  (a) `import dagster`
  (b) `import dagster; import sched_assets.definitions as d; d.defs()`

prints both and the difference (what the project adds) against the target (at most 0.5 s over
`import dagster`, benchmarks/README.md), and which heavy modules (b) loaded.

    uv run python benchmarks/import_time.py              # median of 5 runs each
    uv run python benchmarks/import_time.py --runs 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.model import TARGET_IMPORT_OVER_DAGSTER_S

REPO_ROOT = Path(__file__).resolve().parent.parent

# Top-level packages (and our own subpackages) that a definitions load should not need.
HEAVY_PREFIXES = ("polars", "duckdb", "pyarrow", "orjson", "sched_assets.demo")

_BASELINE = "import dagster"
_DEFINITIONS = "import dagster\nimport sched_assets.definitions as d\nd.defs()"

_LOADED = """
import json, sys
import sched_assets.definitions as d
d.defs()
prefixes = {prefixes!r}
print(json.dumps(sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') for p in prefixes))))
"""


def _time_once(body: str) -> float:
    """Wall time of `body` in a fresh interpreter, measured inside it (excludes interpreter start-up)."""
    code = f"import time\nt0 = time.perf_counter()\n{body}\nprint(time.perf_counter() - t0)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def heavy_modules_loaded() -> list[str]:
    """Heavy modules in `sys.modules` after importing the definitions and calling `defs()`."""
    out = subprocess.run(
        [sys.executable, "-c", _LOADED.format(prefixes=HEAVY_PREFIXES)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _summarise(modules: list[str]) -> list[str]:
    """One entry per heavy prefix: the prefix and how many of its modules were loaded."""
    lines = []
    for prefix in HEAVY_PREFIXES:
        hits = [m for m in modules if m == prefix or m.startswith(prefix + ".")]
        if hits:
            lines.append(f"{prefix} ({len(hits)} modules)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per measurement (default 5)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    # Warm the file-system cache (and any .pyc compilation) once, so run 1 is not an outlier.
    _time_once(_DEFINITIONS)
    # Interleave the two measurements so machine noise hits both alike.
    base_samples: list[float] = []
    defs_samples: list[float] = []
    for _ in range(args.runs):
        base_samples.append(_time_once(_BASELINE))
        defs_samples.append(_time_once(_DEFINITIONS))
    base = statistics.median(base_samples)
    full = statistics.median(defs_samples)

    def fmt(samples: list[float]) -> str:
        return ", ".join(f"{s:.3f}" for s in samples)

    print(f"python {sys.version.split()[0]}, median of {args.runs} fresh interpreters")
    print(f"import dagster:                               {base:.3f} s   [{fmt(base_samples)}]")
    print(f"+ sched_assets.definitions + defs():          {full:.3f} s   [{fmt(defs_samples)}]")
    print(f"difference (what sched_assets adds):          {full - base:+.3f} s")
    verdict = "PASS" if full - base <= TARGET_IMPORT_OVER_DAGSTER_S else "MISS"
    print(f"target: at most +{TARGET_IMPORT_OVER_DAGSTER_S:.3f} s over import dagster: {verdict}")
    heavy = heavy_modules_loaded()
    print("heavy modules loaded by definitions + defs(): " + ("; ".join(_summarise(heavy)) or "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
