"""The CRM connectors the contract in test_crm_contract.py runs against.

A new connector (HubSpot, Salesforce, Pipedrive) joins by adding a maker to ``CRMS``:
a function of a fresh temporary folder that returns a connector talking to a test
double of its CRM (a local server, or the vendor's sandbox when one is configured).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from leadflow.connectors.base import CrmConnector
from leadflow.connectors.fakes import RecordingCrm

CRMS: dict[str, Callable[[Path], CrmConnector]] = {
    "recording": lambda folder: RecordingCrm(folder / "crm.jsonl"),
}


@pytest.fixture(params=sorted(CRMS))
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> CrmConnector:
    """Each CRM connector in turn, with a CRM of its own that has no records yet."""
    return CRMS[request.param](tmp_path)
