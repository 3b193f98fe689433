"""Process settings, read once from the environment (prefix ``LEADFLOW_``).

This is the only place that reads the environment; everything else receives a
``Settings`` instance.

All local state (the embedded database, the admin token, the dry-run CRM file)
lives in one data directory, whatever the current directory: ``LEADFLOW_DATA_DIR``,
else the user's data directory (``~/.local/share/leadflow`` on Linux). Relative
paths in the config file resolve against it too, so every command, run from
anywhere, finds the same database as ``leadflow serve``.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
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
    data_dir: Path = Field(
        default_factory=lambda: user_data_path("leadflow"),
        description="Local state: the embedded database, the admin token, dry-run files. "
        "Unset: the user's data directory (~/.local/share/leadflow on Linux).",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses whose X-Forwarded-For is believed (comma-separated, or *).",
    )
    log_level: str = "INFO"
    log_json: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    worker_concurrency: int = Field(default=10, ge=1)

    @field_validator("data_dir", "config")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """A path given relative is taken from where it was given, once: a process
        that changes its directory later still finds the same place."""
        return None if value is None else value.expanduser().absolute()

    def local_path(self, path: str | Path) -> Path:
        """``path`` as local state: a relative one lies in the data directory."""
        return self.data_dir / Path(path).expanduser()

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def admin_token(settings: Settings) -> str:
    """The admin bearer token: the configured one, else one generated once and kept
    in ``data_dir/admin-token`` (readable by this user only)."""
    return ensure_admin_token(settings)[0]


def ensure_admin_token(settings: Settings) -> tuple[str, bool]:
    """The admin bearer token, and whether it was generated just now."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value(), False
    path = settings.admin_token_path
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token, True
