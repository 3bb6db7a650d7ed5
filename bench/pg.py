"""The benchmark's private PostgreSQL: a cluster of its own (default) or a database of its own.

`private_cluster()` runs `initdb` + `pg_ctl` in a temp dir on a free 127.0.0.1 port (as the
`postgres` OS user when run as root), with `pg_stat_statements` preloaded, and removes it at
the end. `shared_server()` uses a server that is already running instead (e.g. the machine's
on 5432); there the harness only ever touches the database it creates. Either way every
system works in one database, `hubbench_<random>`, which `PgStore.reset()` drops and recreates
between phases (the equivalent of FLUSHALL on the private Redis) and `PgStore.drop()` removes.

`PgCounters` are the server-side numbers per phase: transactions (`pg_stat_database`), rows
written, statements (`pg_stat_statements`, when loaded), WAL bytes and server CPU (own cluster
only: on a shared server other people's work would be counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DB_PREFIX = "hubbench_"
SETTLE_TIMEOUT_S = 10.0
# Shown in the JSON: the server settings that change what the numbers mean.
REPORTED_SETTINGS = (
    "server_version", "fsync", "synchronous_commit", "wal_level", "shared_buffers",
    "max_connections", "shared_preload_libraries", "autovacuum",
)  # fmt: skip
CLUSTER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",  # drains at concurrency 50 use a pool of 51 (procrastinate)
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",  # nested (function, trigger) statements too
    "pg_stat_statements.max": "10000",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server the harness may create databases on."""

    admin_url: str  # a maintenance database (`postgres`); the harness never writes to it
    private: bool  # True: our own cluster (WAL, CPU and pg_stat_statements_reset are ours)
    postmaster_pid: int | None = None
    log_path: Path | None = None  # the server's log (own cluster only)

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))


# --- our own cluster ------------------------------------------------------------------------


def find_pg_bin(explicit: str | None) -> Path:
    """The directory with initdb/pg_ctl: `explicit`, else the newest /usr/lib/postgresql/*."""
    candidates = [explicit] if explicit else []
    candidates += sorted(
        (str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), key=_version_key, reverse=True
    )
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise SystemExit("no initdb found (pass --pg-bin, or --postgres-url to use a running server)")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@contextlib.contextmanager
def private_cluster(pg_bin: Path, free_port: Any) -> Iterator[PgServer]:
    """initdb + pg_ctl start in a fresh temp dir on a free port; stop and delete it after."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="hub-bench-pg-"))
    data = root / "data"
    try:
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
        _run([*as_postgres, str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres",
              "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"])  # fmt: skip
        port = _start(pg_bin, as_postgres, data, root, free_port)
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
            admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            yield PgServer(admin_url, private=True, postmaster_pid=pid,
                           log_path=root / "postgres.log")  # fmt: skip
        finally:
            _run([*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                  "stop"], check=False)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(pg_bin: Path, as_postgres: list[str], data: Path, root: Path, free_port: Any) -> int:
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        settings = {**CLUSTER_SETTINGS, "port": str(port), "unix_socket_directories": str(root)}
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        started = _run([*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-l",
                        str(root / "postgres.log"), "-w", "-t", "30", "-o", options, "start"],
                       check=False)  # fmt: skip
        if started:
            return port
    log = (root / "postgres.log").read_text(errors="replace")[-2000:]
    raise SystemExit(f"postgres did not start:\n{log}")


def _run(argv: list[str], *, check: bool = True) -> bool:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} failed:\n{result.stdout}{result.stderr}")
    return result.returncode == 0


@contextlib.contextmanager
def shared_server(url: str) -> Iterator[PgServer]:
    """A running server given by URL (its database part is only used to connect)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"} or parts.hostname not in {
        "127.0.0.1",
        "localhost",
        "::1",
    }:
        raise SystemExit("--postgres-url must be a postgresql:// URL on this machine")
    yield PgServer(urlunsplit(parts._replace(scheme="postgresql")), private=False)


# --- the private database --------------------------------------------------------------------


@dataclass
class PgStore:
    """One private database on `server`, recreated per phase."""

    server: PgServer
    admin: psycopg.AsyncConnection[Any]
    dbname: str = field(default_factory=lambda: DB_PREFIX + secrets.token_hex(4))
    statements: bool = False  # pg_stat_statements is loaded and installed
    templates: set[str] = field(default_factory=set)

    service = "postgres"

    @classmethod
    async def connect(cls, server: PgServer) -> PgStore:
        admin = await psycopg.AsyncConnection.connect(server.admin_url, autocommit=True)
        store = cls(server, admin)
        if server.private:
            await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cur = await admin.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        )
        row = await cur.fetchone()
        store.statements = bool(row and row[0]) and await store._statements_readable()
        return store

    async def _statements_readable(self) -> bool:
        try:
            await self.admin.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        except psycopg.Error:  # installed but not preloaded
            return False
        return True

    @property
    def url(self) -> str:
        return self.server.url_for(self.dbname)

    def template_name(self, label: str) -> str:
        return f"{self.dbname}_{label}"

    async def reset(self, *, template: str | None = None) -> None:
        """Drop and recreate the private database (from `template` when given)."""
        await self._recreate(self.dbname, template)
        if self.server.private and self.statements:
            await self.admin.execute("SELECT pg_stat_statements_reset()")

    async def create_template(self, label: str) -> str:
        """An empty database to fill and then clone with `reset(template=...)`."""
        name = self.template_name(label)
        await self._recreate(name, None)
        self.templates.add(name)
        return name

    async def _recreate(self, name: str, template: str | None) -> None:
        assert name.startswith(DB_PREFIX), name  # never anything but our own databases
        ident = sql.Identifier(name)
        await self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        if template is None:
            await self.admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        else:
            # FILE_COPY: a checkpoint and a file copy, much faster than WAL_LOG for a big template
            await self.admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    ident, sql.Identifier(template)
                )
            )

    async def drop(self) -> None:
        for name in [self.dbname, *sorted(self.templates)]:
            with contextlib.suppress(psycopg.Error):
                await self.admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    async def vacuum_analyze(self, dbname: str) -> None:
        """VACUUM ANALYZE one of our databases (a filled template, before it is cloned)."""
        assert dbname.startswith(DB_PREFIX), dbname
        url = self.server.url_for(dbname)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("VACUUM ANALYZE")

    async def settle(self, dbname: str | None = None) -> None:
        """Wait until no session is left on the database and its statistics stopped moving.

        Backends flush their `pg_stat_database` counts lazily (at most once a second, and
        when they exit), so the closing reading of a phase waits for that.
        """
        dbname = dbname or self.dbname
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            cur = await self.admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            )
            row = await cur.fetchone()
            if not row or row[0] == 0:
                break
            await asyncio.sleep(0.05)
        previous = None
        while time.monotonic() < deadline:
            current = await self._xact_count()
            if current == previous:
                return
            previous = current
            await asyncio.sleep(0.1)

    async def _xact_count(self) -> int:
        cur = await self.admin.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.dbname,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counters(self) -> PgCounters:
        return await PgCounters.read(self)

    async def describe(self) -> dict[str, Any]:
        """Server version and the settings that matter for the numbers (for the JSON)."""
        info: dict[str, Any] = {"private_cluster": self.server.private}
        for name in REPORTED_SETTINGS:
            cur = await self.admin.execute(sql.SQL("SHOW {}").format(sql.SQL(name)))
            row = await cur.fetchone()
            info[name] = row[0] if row else None
        info["pg_stat_statements"] = self.statements
        return info

    async def aclose(self) -> None:
        await self.admin.close()


# --- counters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgCounters:
    """Cumulative counters of the private database (and, on our own cluster, the server)."""

    xacts: int  # xact_commit + xact_rollback
    rows_written: int  # tup_inserted + tup_updated + tup_deleted
    statements_top: int | None  # pg_stat_statements calls sent by clients
    statements_all: int | None  # ... plus those run inside functions and triggers
    by_query: dict[str, tuple[str, int]]  # queryid -> (text, top-level calls)
    wal_bytes: int | None  # own cluster only
    cpu_s: float | None  # postgres processes' CPU, own cluster only

    @classmethod
    async def read(cls, store: PgStore) -> PgCounters:
        cur = await store.admin.execute(
            "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = %s",
            (store.dbname,),
        )
        row = await cur.fetchone()
        xacts, rows = (int(row[0]), int(row[1])) if row else (0, 0)
        top = everything = None
        by_query: dict[str, tuple[str, int]] = {}
        if store.statements:
            cur = await store.admin.execute(
                "SELECT s.queryid::text, s.toplevel, s.calls, left(s.query, 600) "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = %s",
                (store.dbname,),
            )
            top = everything = 0
            for queryid, toplevel, calls, text in await cur.fetchall():
                everything += calls
                if toplevel:
                    top += calls
                    by_query[queryid] = (short_sql(text), calls)
        wal = cpu = None
        if store.server.private:
            cur = await store.admin.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
            )
            wal_row = await cur.fetchone()
            wal = int(wal_row[0]) if wal_row else None
            cpu = postgres_cpu_s(store.server.postmaster_pid)
        return cls(xacts, rows, top, everything, by_query, wal, cpu)

    def since(self, before: PgCounters, jobs: int) -> dict[str, Any]:
        def per_job(mine: float | None, theirs: float | None, scale: float = 1.0) -> Any:
            if mine is None or theirs is None:
                return None
            return round((mine - theirs) / jobs * scale, 4)

        queries = {
            qid: (text, calls - before.by_query.get(qid, ("", 0))[1])
            for qid, (text, calls) in self.by_query.items()
        }
        busiest = sorted(
            ((text, calls) for text, calls in queries.values() if calls), key=lambda q: -q[1]
        )
        return {
            "pg_stmts_per_job": per_job(self.statements_top, before.statements_top),
            "pg_stmts_all_per_job": per_job(self.statements_all, before.statements_all),
            "pg_xacts_per_job": per_job(self.xacts, before.xacts),
            "pg_rows_written_per_job": per_job(self.rows_written, before.rows_written),
            "pg_wal_bytes_per_job": per_job(self.wal_bytes, before.wal_bytes),
            "pg_cpu_us_per_job": per_job(self.cpu_s, before.cpu_s, 1e6),
            "pg_xacts_total": self.xacts - before.xacts,
            "pg_stmts_by_query": dict(busiest[:20]),
        }


def short_sql(text: str, width: int = 110) -> str:
    """A statement on one line, without comments, cut to `width` characters."""
    text = " ".join(re.sub(r"--[^\n]*", " ", text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def postgres_cpu_s(postmaster: int | None) -> float | None:
    """CPU of the postmaster, its live children and its reaped children (cutime/cstime)."""
    if postmaster is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif ppid == postmaster:
                total += int(fields[11]) + int(fields[12])
    return total / ticks
