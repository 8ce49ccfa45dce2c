"""A throwaway PostgreSQL 15 cluster in a temp dir, for one benchmark run.

The machine runs as root and PostgreSQL refuses root, so initdb and pg_ctl
run as the `postgres` user (`runuser`), with the data and socket dirs owned
by it. Trust auth on 127.0.0.1, a free port, fsync on (the default).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

__all__ = ["BIN", "available", "throwaway_cluster"]

BIN = os.environ.get("DURABLE_PG_BIN", "/usr/lib/postgresql/15/bin")


def available() -> str | None:
    """None if a cluster can be started here, else why not."""
    if not os.path.exists(os.path.join(BIN, "pg_ctl")):
        return f"skipped: no PostgreSQL binaries in {BIN} (set DURABLE_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "skipped: running as root and there is no `postgres` user to run the server"
        if shutil.which("runuser") is None:
            return "skipped: running as root and `runuser` is missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster; yield its DSN; stop it and remove every file."""
    root = tempfile.mkdtemp(prefix="durable-pg-")
    data, sock, log = os.path.join(root, "data"), os.path.join(root, "sock"), os.path.join(root, "log")
    os.makedirs(sock)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    run = dict(check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root)
    try:
        subprocess.run(_as_postgres([f"{BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                                     "--no-sync", "-E", "UTF8"]), **run)
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} "
                   "-c fsync=on -c synchronous_commit=on -c max_connections=200")
        subprocess.run(_as_postgres([f"{BIN}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start"]), **run)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_postgres([f"{BIN}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    except subprocess.CalledProcessError as exc:
        tail = exc.stdout.decode(errors="replace")[-800:] if exc.stdout else ""
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                tail += f.read()[-800:]
        raise RuntimeError(f"could not start PostgreSQL: {exc}\n{tail}") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)
