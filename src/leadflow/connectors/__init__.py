"""Outside systems (CRM, email, notifications), each behind a Protocol."""

from __future__ import annotations

from pathlib import Path

from leadflow.config import Config
from leadflow.connectors.base import CrmConnector
from leadflow.connectors.fakes import RecordingCrm

_recording: dict[Path, RecordingCrm] = {}


def crm_from_config(config: Config, data_dir: Path) -> CrmConnector | None:
    """The configured CRM connector, or None when leads stop at ``routed``; a relative
    path of the recording CRM lies in ``data_dir``.

    One instance per target for the life of the process: connectors keep state
    worth keeping (the recording fake its index of keys, real ones their HTTP pool)."""
    crm = config.connectors.crm
    if crm is None:
        return None
    path = (data_dir / Path(crm.path).expanduser()).resolve()
    if path not in _recording:
        _recording[path] = RecordingCrm(path)
    return _recording[path]


__all__ = ["CrmConnector", "crm_from_config"]
