"""A throwaway PostgreSQL 15 cluster for tests: started once per session, removed at the end.

The machine runs the tests as root and PostgreSQL refuses to run as root, so
`initdb`, `pg_ctl` and `pg_dump` run as the `postgres` user through
`runuser`, with the data and socket directories owned by it. The server
listens on 127.0.0.1 on a free port, trusts local connections and keeps
fsync on (tests then see what users see). Each test that wants isolation
gets a fresh database from `new_database`.

Used by the `pg_dsn` fixture in tests/conftest.py; importable on its own
(tests/ is on sys.path for pytest's default import mode).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Cluster", "PG_BIN", "drop_database", "dump", "new_database", "unavailable"]

PG_BIN = os.environ.get("DURABLE_PG_BIN", "/usr/lib/postgresql/15/bin")
_counter = itertools.count(1)


def unavailable(tools: tuple[str, ...] = ("initdb", "pg_ctl")) -> str | None:
    """None if a cluster can be started here (and `tools` exist), else the reason why not."""
    for tool in tools:
        if not os.path.exists(os.path.join(PG_BIN, tool)):
            return f"PostgreSQL binaries not found: no {tool} in {PG_BIN} (set DURABLE_PG_BIN)"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[postgres]')"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing: cannot start PostgreSQL as another user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL as"
    return None


def as_postgres(args: list[str]) -> list[str]:
    """`args`, run as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    root: str
    data: str
    port: int
    log: str

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> Cluster:
        # Not under pytest's tmp_path: its parents are 0700 root, which postgres cannot traverse.
        root = tempfile.mkdtemp(prefix="durable-test-pg-")
        data, sockets, log = (os.path.join(root, name) for name in ("data", "sockets", "server.log"))
        os.makedirs(sockets)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (root, sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cluster = cls(root, data, _free_port(), log)
        try:
            cluster._run([f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--no-sync"])
            options = " ".join([
                "-c listen_addresses=127.0.0.1", f"-c port={cluster.port}", f"-c unix_socket_directories={sockets}",
                "-c fsync=on", "-c synchronous_commit=on", "-c max_connections=300",
            ])
            cluster._run([f"{PG_BIN}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"])
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(as_postgres(args), cwd=self.root, capture_output=True, text=True)
        if done.returncode != 0:
            tail = ""
            if os.path.exists(self.log):
                with open(self.log, errors="replace") as f:
                    tail = f.read()[-2000:]
            raise RuntimeError(f"{os.path.basename(args[0])} failed ({done.returncode}): "
                               f"{done.stdout[-1000:]}{done.stderr[-1000:]}\n{tail}")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"]),
                           cwd=self.root, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def dump(dsn: str) -> bytes:
    """`pg_dump` of the database `dsn` names (plain SQL), run as the postgres user."""
    done = subprocess.run(as_postgres([f"{PG_BIN}/pg_dump", f"--dbname={dsn}"]), capture_output=True, timeout=60,
                          cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def new_database(dsn: str, prefix: str = "t") -> str:
    """Create an empty database on the server of `dsn`; the DSN that names it."""
    import asyncpg

    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')  # ~25 ms here
    finally:
        await conn.close()
    return with_database(dsn, name)


async def drop_database(dsn: str) -> None:
    """Drop the database `dsn` names, ending any session a test left open on it."""
    import asyncpg

    parts = urlsplit(dsn)
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()
