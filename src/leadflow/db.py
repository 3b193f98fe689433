"""Database wiring: the URL (external or embedded), the engine, sessions."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from leadflow.settings import Settings

logger = logging.getLogger(__name__)


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg, procrastinate) wants it: no SQLAlchemy driver suffix."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    scheme = scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme != "postgresql":
        raise ValueError(f"Leadflow needs PostgreSQL; got a {scheme!r} URL")
    return f"postgresql://{rest}"


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + libpq_url(url).removeprefix("postgresql://")


_embedded: list[Any] = []  # the embedded servers this process started


def _import_pgserver(data_dir: Path) -> Any:
    """pgserver, given a runtime folder of the data directory's own.

    pgserver asks platformdirs for the user's runtime directory when it is imported
    (its lock file and, for long paths, its socket live there). Without a login
    session XDG_RUNTIME_DIR is unset, and platformdirs warns and falls back to a
    shared /tmp folder. A private folder in the data directory is what the spec asks
    for (owned by the user, mode 0700), and every process of this data directory
    finds the same one."""
    import sys

    if "pgserver" in sys.modules or os.environ.get("XDG_RUNTIME_DIR"):
        import pgserver

        return pgserver
    run = data_dir / "run"
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    run.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(run)
    try:
        import pgserver
    finally:
        del os.environ["XDG_RUNTIME_DIR"]
    return pgserver


def _log_to_file(data_dir: Path) -> Path:
    """pgserver's log (its initdb and pg_ctl output, some sixty lines at each start)
    goes to ``data_dir/postgres.log``, not to the terminal."""
    path = data_dir / "postgres.log"
    pg_logger = logging.getLogger("pgserver")
    if not any(getattr(h, "baseFilename", None) == str(path) for h in pg_logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        pg_logger.addHandler(handler)
    pg_logger.setLevel(logging.INFO)
    pg_logger.propagate = False
    return path


def start_embedded(data_dir: Path) -> str:
    """Start (or join, when another process of the same data directory runs it) the
    private PostgreSQL kept in ``data_dir/postgres``; return its URL."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(data_dir)
    pgserver = _import_pgserver(data_dir)
    server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
    _embedded.append(server)
    url: str = server.get_uri()
    logger.debug("embedded PostgreSQL running in %s", data_dir / "postgres")
    return url


def stop_embedded() -> None:
    """Stop the embedded servers this process started (if no other process uses them).

    pgserver stops its server at interpreter exit, but uvicorn ends a SIGTERMed
    process by re-raising the signal, which skips exit handlers: so ``serve``
    calls this when the app shuts down."""
    while _embedded:
        _embedded.pop().cleanup()


class NoDatabase(ValueError):
    """No database is configured and this install may not start an embedded one."""


def database_url(settings: Settings) -> str:
    """The libpq URL of the database: the configured one, else the embedded one (unless
    ``embedded_database`` is off: then NoDatabase)."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    if not settings.embedded_database:
        raise NoDatabase(
            "LEADFLOW_DATABASE_URL is not set, and this install starts no embedded PostgreSQL "
            "(LEADFLOW_EMBEDDED_DATABASE=false): set it to postgresql://user:password@host/db"
        )
    return start_embedded(settings.data_dir)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def lock_id(scope: str) -> int:
    """A signed 64-bit id for pg_advisory_xact_lock from any text."""
    digest = hashlib.blake2b(scope.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_ids(scopes: Iterable[str]) -> list[int]:
    """The scopes' lock ids, distinct and sorted: transactions that take several
    locks in this order never deadlock on them."""
    return sorted({lock_id(scope) for scope in scopes})


_LOCKS = text("SELECT pg_advisory_xact_lock(id) FROM unnest(CAST(:ids AS bigint[])) AS id")


async def advisory_lock(session: AsyncSession, *scopes: str) -> None:
    """Serialise transactions on each scope until this one ends (transaction advisory
    locks), all in one statement, in ``lock_ids``' order."""
    await session.execute(_LOCKS, {"ids": lock_ids(scopes)})


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends, or rolls back on error."""
    async with sessions() as session, session.begin():
        yield session


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[object]:
    """The psycopg connection under ``session``, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver
