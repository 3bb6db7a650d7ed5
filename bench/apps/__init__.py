"""The systems of `bench/compare.py`, one module each, importable by their own CLIs.

Each module builds its app from the environment (`BENCH_REDIS_URL`, `BENCH_CONCURRENCY`), so
that `taskiq worker apps.taskiq_app:broker`, `saq apps.saq_app.settings`, `dramatiq
apps.dramatiq_app` and `hub-scheduler worker apps.hub_app:hub` run it exactly as a user runs
their app (with `bench/` on `PYTHONPATH`). Each also has a `Client` that `compare_client.py`
drives to enqueue. One module per system, so a worker imports only its own library (its RSS).

The job is the same everywhere: `INCR compare:done`, and, for a job whose payload carries its
enqueue time `t`, `RPUSH compare:lat <start - t in ms>` (latency phase only).
"""
