"""A PostgreSQL server of the OS packages (``initdb``, ``pg_ctl``) on a free loopback port, started
for a test or a benchmark and removed after, so a decision store on PostgreSQL is tried on a real
server without anything installed beyond the packages of ``make system-deps``.

As root it runs as the ``postgres`` user that the Debian package creates, since PostgreSQL refuses
to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scoring.errors import ScoringError


class NoPostgres(ScoringError):
    """The server binaries, or a user to run them as, are not on this machine."""

    code = "no_postgres"
    status = None
    title_zh = "本机没有PostgreSQL服务器"


def server_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else the newest under /usr/lib/postgresql."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


class LocalPostgres:
    """A server of its own data folder and port: started on creation, stopped and started again at will
    (the same data, the same port, so clients reconnect to the same URL), removed by :meth:`close`.

    Args:
        durable: fsync on (the default: a commit is on disk when it returns, as a decision store needs);
            off for tests, where only the semantics matter.

    Raises:
        NoPostgres: no server binaries, or root without a ``postgres`` user.
    """

    def __init__(self, *, durable: bool = True):
        bin_dir = server_binaries()
        if bin_dir is None:
            raise NoPostgres("PostgreSQL server binaries (initdb, pg_ctl) not found: `make system-deps` installs them")
        # not under a test runner's temp folder: that one may be private to the user running the tests
        self.base = Path(tempfile.mkdtemp(prefix="scoring-pg-"))
        self.data, sockets = self.base / "data", self.base / "sockets"
        sockets.mkdir()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                shutil.rmtree(self.base, ignore_errors=True)
                raise NoPostgres("running as root without a postgres user to run the server as") from exc
            for path in (self.base, sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.pg_ctl = str(bin_dir / "pg_ctl")
        self._run(str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync={'on' if durable else 'off'}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        self.start()

    def _run(self, *command: str) -> None:
        subprocess.run([*self.prefix, *command], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(self.pg_ctl, "-D", str(self.data), "-o", self.options, "-l", str(self.base / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends the sessions and checkpoints; ``immediate`` is a crash (recovery on start)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop the server (if it runs) and remove its folder."""
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"], timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def local_postgres(*, durable: bool = True) -> Iterator[str]:
    """A fresh server's SQLAlchemy URL while the block runs (a :class:`LocalPostgres`)."""
    server = LocalPostgres(durable=durable)
    try:
        yield server.url
    finally:
        server.close()
