"""Outside systems (CRM, email, notifications), each behind a Protocol."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from leadflow.config import Config, ConfigError, ConfigIssue
from leadflow.config.schema import HubSpotCrm as HubSpotTarget
from leadflow.connectors.base import CrmConnector
from leadflow.connectors.fakes import RecordingCrm

if TYPE_CHECKING:
    from leadflow.connectors.hubspot import HubSpotCrm

_recording: dict[Path, RecordingCrm] = {}
_hubspot: dict[tuple[str, str, float], HubSpotCrm] = {}


def crm_from_config(config: Config, data_dir: Path) -> CrmConnector | None:
    """The configured CRM connector, or None when leads stop at ``routed``; a relative
    path of the recording CRM lies in ``data_dir``.

    One instance per target for the life of the process: connectors keep state
    worth keeping (the recording fake its index of keys, real ones their HTTP pool)."""
    crm = config.connectors.crm
    if crm is None:
        return None
    if isinstance(crm, HubSpotTarget):
        return _hubspot_from(crm)
    path = (data_dir / Path(crm.path).expanduser()).resolve()
    if path not in _recording:
        _recording[path] = RecordingCrm(path)
    return _recording[path]


def check_crm(config: Config, data_dir: Path, source: Path | None) -> None:
    """Build the configured CRM connector now, so what only the environment can spoil (a
    token's variable unset) is a ConfigError naming the config file before any lead waits."""
    try:
        crm_from_config(config, data_dir)
    except ConfigError as exc:
        where = str(source or "the built-in demo config")
        raise ConfigError([dataclasses.replace(i, file=where) for i in exc.issues]) from None


def _hubspot_from(target: HubSpotTarget) -> HubSpotCrm:
    """The HubSpot connector; its token is read from the environment now, and a missing
    one is a config error naming the variable."""
    token = os.environ.get(target.token_env, "").strip()
    if not token:
        raise ConfigError(
            [
                ConfigIssue(
                    "config",
                    None,
                    "connectors.crm.token_env",
                    f"environment variable {target.token_env} is not set "
                    "(the HubSpot private app's access token)",
                )
            ]
        )
    from leadflow.connectors.hubspot import HubSpotCrm  # its client is slow to import

    key = (token, target.base_url, target.timeout.total_seconds())
    if key not in _hubspot:
        _hubspot[key] = HubSpotCrm(token, target.base_url, timeout=key[2])
    return _hubspot[key]


__all__ = ["CrmConnector", "check_crm", "crm_from_config"]
