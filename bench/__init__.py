"""Benchmarks: scripts that print figures, never assert them.

Run them all with ``make bench``, or one with ``python -m bench.poll_cycle``. Each
needs the PostgreSQL at 127.0.0.1:5432 (``TEST_DATABASE_ADMIN_URL`` to use another)
that the tests use, creates a scratch database of its own and drops it when done.
Modules whose name starts with ``_`` are helpers, not benchmarks.
"""
