"""A throw-away PostgreSQL 15 on loopback, for ``receiver drill --ha`` and the tests.

``initdb`` into a temporary directory, then ``postgres`` on a free loopback port. PostgreSQL refuses to run
as root (and CI runs as root), so the server then runs as the unprivileged ``postgres`` user (created by
Debian's package) through ``runuser``, in a directory made outside any 0700 tree and owned by that user.
As a normal user it simply runs as that user. ``trust`` authentication on 127.0.0.1 only: it holds drill
and test data, nothing else. The tests give each test its own database (``CREATE DATABASE`` ~0.1 s).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from receiver.errors import DrillError

__all__ = ["RunningPostgres", "find_pg_bin", "start_postgres"]


def find_pg_bin() -> Path:
    """The directory of ``postgres`` and ``initdb`` (Debian keeps them off PATH)."""
    for name in ("postgres", "initdb"):
        found = shutil.which(name)
        if found and Path(found).resolve().parent.joinpath("initdb").exists():
            return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    if not candidates:
        raise DrillError("PostgreSQL is not installed: run scripts/setup.sh (Debian package 'postgresql')")
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningPostgres:
    def __init__(self, bin_dir: Path, base: Path, port: int, user: str | None) -> None:
        self.bin_dir, self.base, self.port, self.user = bin_dir, base, port, user
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    @property
    def dsn_base(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"{self.dsn_base}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.base}",
            "-c",
            "fsync=on",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
        ]
        log = open(self.log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(self._as_user(argv), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DrillError(
                    f"postgres exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self._psql("SELECT 1").returncode == 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise DrillError(f"postgres did not start within {timeout}s:\n{self.log.read_text()[-2000:]}")

    def _psql(self, sql: str, database: str = "postgres") -> subprocess.CompletedProcess[bytes]:
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        return subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url(database), "-c", sql],
            capture_output=True,
            timeout=30,
        )

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        result = self._psql(f'CREATE DATABASE "{name}"')
        if result.returncode != 0:
            raise DrillError(f"CREATE DATABASE {name} failed: {result.stderr.decode()}")
        return self.url(name)

    def sql(self, sql: str, database: str) -> str:
        result = self._psql(sql, database)
        if result.returncode != 0:
            raise DrillError(f"psql failed: {result.stderr.decode()}")
        return result.stdout.decode()

    def stop(self, *, hard: bool = False) -> None:
        """Stop the server (``hard``: SIGKILL, as a crash or a lost host would)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if hard else signal.SIGINT)  # SIGINT: fast shutdown
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> RunningPostgres:
    bin_dir = find_pg_bin()
    base = Path(tempfile.mkdtemp(prefix="receiver-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise DrillError(
                "running as root needs the 'postgres' user (Debian package postgresql)"
            ) from None
        os.chmod(base, 0o700)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = RunningPostgres(bin_dir, base, _free_port(), user)
    initdb = [str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    result = subprocess.run(server._as_user(initdb), capture_output=True, timeout=120)
    if result.returncode != 0:
        raise DrillError(f"initdb failed: {result.stderr.decode()[-2000:]}")
    server.start()
    return server
