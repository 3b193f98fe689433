"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document.

Schemathesis generates requests (valid and broken bodies in all three content
types, odd headers, odd paths) against a real `leadflow serve` process and
checks that nothing answers 5xx and every answer matches the documented schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TEST_CONFIG, _create_database, _drop_database
from tests.test_cli import _free_port, _start, _stop, _wait_ready

TOKEN = "fuzz-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_server(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = _create_database(server_url)
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / "leadflow.yaml"
    config.write_text(TEST_CONFIG)
    port = _free_port()
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database,
        "LEADFLOW_ADMIN_TOKEN": TOKEN,
        "LEADFLOW_DATA_DIR": str(folder),
        "LEADFLOW_CONFIG": str(config),
    }
    process = _start(["serve", "--port", str(port), "--no-worker"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base
    finally:
        logs = _stop(process)
        _drop_database(server_url, database)
        assert "Traceback" not in logs[0], logs[0]


@pytest.fixture(scope="module")
def api_schema(live_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_server}/openapi.json")


def test_no_input_gets_a_server_error_or_an_undocumented_answer(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    seen: dict[str, set[int]] = {}

    def fuzz(operation: Any) -> None:
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(case: Any) -> None:
            # Half of the generated form keys become a real one, and half of those bodies
            # get a usable address, so the intake's logic is reached, not only its 404.
            if "form_key" in (case.path_parameters or {}) and hash(repr(case.body)) % 2 == 0:
                case.path_parameters["form_key"] = "contact"
                if isinstance(case.body, dict) and hash(repr(case.body)) % 4 == 0:
                    case.body["email"] = "fuzz@acme.de"
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS
            )
            seen.setdefault(label, set()).add(response.status_code)

        exercise()

    for operation in operations:
        fuzz(operation)

    # The fuzzing reached the intake's success path and its refusals, not only 404s.
    intake = seen["POST /v1/forms/{form_key}/submissions"]
    assert 202 in intake, intake
    assert intake & {400, 415, 422}, intake
