"""A real PostgreSQL server for the history store's tests: Debian's `postgresql` package
(`initdb` + `pg_ctl`), started in a temporary directory, listening on a Unix socket only (no TCP),
stopped when the test session ends. As root it runs as the package's `postgres` user (initdb
refuses root)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

PORT = 5432  # names the socket file only: listen_addresses is empty, nothing listens on TCP
USER = "casemate"


def bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise AssertionError(
            "PostgreSQL is not installed (Debian's postgresql package; scripts/host-setup.sh "
            "installs it)"
        )
    return found[-1].parent


@dataclass(frozen=True, slots=True)
class Server:
    socket_dir: Path

    def url(self, database: str, password: str | None = None) -> str:
        who = f"{USER}:{password}" if password else USER
        return f"postgresql://{who}@/{database}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        with psycopg.connect(
            host=str(self.socket_dir), port=PORT, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        name = f"history_{secrets.token_hex(4)}"
        self.admin(f"CREATE DATABASE {name}")
        return name


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@contextmanager
def server() -> Iterator[Server]:
    binaries = bindir()
    owner = "postgres" if os.geteuid() == 0 else None
    top = Path(tempfile.mkdtemp(prefix="casemate-pg-"))
    data, sock, log = top / "data", top / "sock", top / "server.log"
    sock.mkdir()
    if owner:
        entry = pwd.getpwnam(owner)
        for path in (top, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync"]
    subprocess.run(_as_owner(initdb, owner), check=True, capture_output=True)
    options = f"-k {sock} -p {PORT} -c listen_addresses='' -c fsync=off"
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w"]
    try:
        subprocess.run(_as_owner([*start, "start"], owner), check=True, capture_output=True)
        yield Server(sock)
    finally:
        subprocess.run(
            _as_owner(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], owner
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(top, ignore_errors=True)
