"""A private PostgreSQL cluster that a test may stop, restart and start again.

Made with ``initdb``/``pg_ctl`` from the PostgreSQL binaries that the ``pgserver``
package ships (on every machine the project installs on), listening on a free
TCP port of 127.0.0.1 that stays the same across restarts, so that clients
reconnect to the same URL as they would to a managed database after maintenance.
As root, the server runs as pgserver's own system user (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped]
from pgserver.utils import ensure_prefix_permissions, ensure_user_exists  # type: ignore[import-untyped]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """``start()``, ``stop()``, ``restart()``; ``url`` reaches the database ``leadflow``."""

    def __init__(self, *, max_connections: int = 100) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="leadflow-pgcluster-"))
        self.pgdata = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            ensure_user_exists(self.user)
            self.folder.chmod(0o777)
            ensure_prefix_permissions(self.folder)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = ''\nmax_connections = {max_connections}\n"
                # fsync off: the tests crash the server, never the machine, and the OS
                # keeps what the server wrote; commits stay synchronous (no loss).
                "fsync = off\n"
            )
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "leadflow")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/leadflow"

    def _run(self, program: str, *args: str, **kwargs: Any) -> None:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.folder,
            timeout=200,
            **kwargs,
        )

    def _ctl(self, *args: str) -> None:
        # -t: a loaded machine (a CI run beside other work) may take longer than the 60 s
        # pg_ctl waits by default for the server to start or stop.
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "180", *args)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once, as a managed database's restart does;
        ``immediate`` is a crash (no shutdown checkpoint)."""
        self._ctl("-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "restart")

    def running(self) -> bool:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            user=self.user,
            check=False,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
