"""A private, restartable PostgreSQL cluster for the restart tests.

`initdb` in a directory of its own, `pg_ctl` on a free loopback port with its socket in that
directory; as the ``postgres`` OS user when run as root (PostgreSQL refuses to run as root).
The binaries come from ``HUB_SCHEDULER_TEST_POSTGRES_BIN`` (a directory holding ``initdb`` and
``pg_ctl``), else from the newest ``/usr/lib/postgresql/*/bin`` (Debian's layout), else from
``PATH``. The machine's shared server is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Literal

POSTGRES_BIN_ENV = "HUB_SCHEDULER_TEST_POSTGRES_BIN"
#: ``fsync=off``: a stopped or crashed *server* loses nothing the kernel already has (only a
#: crash of the machine would), and commits do not wait for the disk of a shared test box.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "max_connections": "40",
    "shared_buffers": "16MB",
}
StopMode = Literal["smart", "fast", "immediate"]


class PostgresServerError(RuntimeError):
    """A PostgreSQL command of the test cluster failed."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _version(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in bin_dir.parent.name.split(".") if p.isdigit())


def find_bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: the env var's directory if set (whether or not they
    are there), else the newest Debian one, else the one on PATH; None when there is none."""
    explicit = os.environ.get(POSTGRES_BIN_ENV)
    if explicit:
        return Path(explicit)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


class PostgresServer:
    """One PostgreSQL cluster in `directory` on a loopback port, started and stopped at will.

    `directory` must be new or empty and reachable by the ``postgres`` user when run as root
    (not under pytest's ``tmp_path``, which only root may enter).
    """

    def __init__(self, bin_dir: Path, directory: Path) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.running = False
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """Where clients connect (the maintenance database: the cluster is ours alone)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.directory / "postgres.log"

    def _run(self, *argv: str) -> None:
        command = [*self._as_postgres, *argv]
        try:
            result = subprocess.run(  # noqa: S603 - our own arguments
                command, capture_output=True, text=True, check=False, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresServerError(f"{' '.join(command)}: {exc}") from exc
        if result.returncode != 0:
            raise PostgresServerError(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self.log_tail()}"
            )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log ('' before it has one)."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def init(self) -> None:
        """Create the cluster (``initdb``: trust authentication, user ``postgres``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start_now(self) -> None:
        """Start the server and return once it accepts connections (``pg_ctl -w``)."""
        settings = {
            **SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.directory),
        }
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", "30", "-o", options, "start",
        )  # fmt: skip
        self.running = True

    def stop_now(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` ends sessions and checkpoints; ``immediate`` is a crash
        (every process quits at once; the next start replays the WAL)."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    async def start(self) -> None:
        """`start_now` without blocking the event loop."""
        await asyncio.to_thread(self.start_now)

    async def stop(self, mode: StopMode = "fast") -> None:
        """`stop_now` without blocking the event loop."""
        await asyncio.to_thread(self.stop_now, mode)

    async def restart(self, mode: StopMode = "fast") -> None:
        """Stop (`mode`), then start again on the same port with the same data."""
        await self.stop(mode)
        await self.start()
