"""The CRM connectors the contract in test_crm_contract.py runs against.

A new connector (HubSpot, Salesforce, Pipedrive) joins by adding a maker to ``CRMS``:
a function of a fresh temporary folder that returns a connector talking to a test
double of its CRM (a local server, or the vendor's sandbox when one is configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from leadflow.connectors.base import CrmConnector
from leadflow.connectors.fakes import RecordingCrm
from leadflow.connectors.hubspot import HubSpotCrm
from tests.connectors.fake_hubspot import TOKEN, FakeHubSpot, serve

_servers: list[ThreadingHTTPServer] = []  # the local CRMs started for one test


def _hubspot(folder: Path) -> CrmConnector:
    fake = FakeHubSpot()
    _servers.append(serve(fake))
    return HubSpotCrm(TOKEN, fake.url, timeout=2)


CRMS: dict[str, Callable[[Path], CrmConnector]] = {
    "recording": lambda folder: RecordingCrm(folder / "crm.jsonl"),
    "hubspot": _hubspot,
}


@pytest.fixture(params=sorted(CRMS))
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrmConnector]:
    """Each CRM connector in turn, with a CRM of its own that has no records yet."""
    yield CRMS[request.param](tmp_path)
    while _servers:
        server = _servers.pop()
        server.shutdown()
        server.server_close()
