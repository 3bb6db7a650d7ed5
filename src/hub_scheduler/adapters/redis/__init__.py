"""Redis adapters: the queue, dead letters, run history (and, later, schedules) on redis-py.

`memory://` runs the very same code on fakeredis, Lua included.
"""
