"""sched_assets: a Dagster project that keeps an analytics copy of a Cal.com account in DuckDB."""

__version__ = "0.1.0"
