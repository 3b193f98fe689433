"""Process settings, read once from the environment (prefix ``LEADFLOW_``).

This is the only place that reads the environment; everything else receives a
``Settings`` instance.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description=(
            "postgresql://user:pass@host:port/db as hosting providers give it. "
            "Unset: an embedded PostgreSQL is started with its data under data_dir."
        ),
    )
    embedded_database: bool = Field(
        default=True,
        description="With database_url unset, start an embedded PostgreSQL (false: refuse "
        "to start; the container image sets it, a container's disk is not for a database).",
    )
    config: Path | None = Field(
        default=None, description="Path to leadflow.yaml; unset: the built-in demo config."
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db for shared rate-limit counters."
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bootstrap bearer token for the admin API. Unset: one is generated "
        "and kept in data_dir/admin-token.",
    )
    data_dir: Path = Field(default=Path("var"), description="Local state (embedded database).")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses whose X-Forwarded-For is believed (comma-separated, or *).",
    )
    log_level: str = "INFO"
    log_json: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    worker_concurrency: int = Field(default=10, ge=1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def admin_token(settings: Settings) -> str:
    """The admin bearer token: the configured one, else one generated once and kept
    in ``data_dir/admin-token`` (readable by this user only)."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token
