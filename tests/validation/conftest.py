# The validation step is tested inside the whole pipeline, with its recording CRM.
from pathlib import Path

import pytest

from leadflow.config import Config
from tests.factories import config_with_crm


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_with_crm(tmp_path / "crm.jsonl")
