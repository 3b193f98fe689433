"""Outside systems (CRM, email, notifications), each behind a Protocol."""

from __future__ import annotations

from pathlib import Path

from leadflow.config import Config
from leadflow.connectors.base import CrmConnector
from leadflow.connectors.fakes import RecordingCrm


def crm_from_config(config: Config) -> CrmConnector | None:
    """The configured CRM connector, or None when leads stop at ``routed``."""
    crm = config.connectors.crm
    if crm is None:
        return None
    return RecordingCrm(Path(crm.path))


__all__ = ["CrmConnector", "crm_from_config"]
