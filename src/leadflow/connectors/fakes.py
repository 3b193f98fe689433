"""Recording fakes: the connector contracts without an outside system.

For tests and for dry runs only (``connectors.crm.kind: recording``): every
call is appended to a JSON-lines file, so what *would* have been sent can be
read back — also across processes, which the crash tests rely on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadflow.connectors.base import Alert, CrmLead
from leadflow.models.base import utcnow


class RecordingCrm:
    """A CRM that records calls; an idempotency key seen before is an update, not a create."""

    name = "recording"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: set[str] = set()
        self._offset = 0  # how far into the file _seen has read

    async def upsert_lead(self, lead: CrmLead, *, idempotency_key: str) -> str:
        return (await self.upsert_leads([lead], idempotency_keys=[idempotency_key]))[0]

    async def upsert_leads(
        self, leads: Sequence[CrmLead], *, idempotency_keys: Sequence[str]
    ) -> list[str]:
        return await asyncio.to_thread(self._append, leads, idempotency_keys)

    def _append(self, leads: Sequence[CrmLead], keys: Sequence[str]) -> list[str]:
        """One record per lead, written in one go (a batch call is one call)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        external_ids = []
        with self.path.open("a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # one writer at a time, across processes
            file.seek(self._offset)
            for line in file.read().splitlines():  # what others wrote since we last looked
                if line.strip():
                    self._seen.add(json.loads(line)["key"])
            records = []
            for lead, key in zip(leads, keys, strict=True):
                external_id = "rec-" + hashlib.sha256(key.encode()).hexdigest()[:16]
                records.append(
                    {
                        "key": key,
                        "action": "update" if key in self._seen else "create",
                        "external_id": external_id,
                        "at": utcnow().isoformat(),
                        "batch": len(keys),
                        "lead": dataclasses.asdict(lead),
                    }
                )
                external_ids.append(external_id)
                self._seen.add(key)
            file.write("".join(json.dumps(record) + "\n" for record in records))
            # Flushed to the OS, which keeps it when this process is killed; no fsync:
            # a dry-run record need not survive the machine losing power.
            file.flush()
            self._offset = file.tell()
        return external_ids

    def calls(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class RecordingNotifier:
    """A notifier that keeps the alerts it was given, in order (tests, dry runs)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


class NullNotifier:
    """Alerts go to the log only (the check that raises one logs it): no channel configured."""

    async def notify(self, alert: Alert) -> None:
        return None
