"""Forms with consent to give: a required purpose, an optional one under its own input
name, and a form that asks for none. The config is a file, so a test can change a
policy's text and reload it as an operator would."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadflow.config import Config, load_config
from leadflow.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.factories import config_yaml

TERMS = "I accept the terms of service."
NEWS = "Send me product news. I can unsubscribe at any time."

CONSENT_FORMS = f"""
forms:
  trial:
    fields: {{work_email: email}}
    consent:
      - purpose: terms
        text: {TERMS}
        policy_version: tos-2026-02
        required: true
      - purpose: marketing_email
        text: {NEWS}
        policy_version: "2026-01"
        field: newsletter
  plain:
    fields: {{work_email: email}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "leadflow.yaml"
    path.write_text(config_yaml(forms=CONSENT_FORMS), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, config_file: Path) -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, data_dir=tmp_path, config=config_file)


@pytest.fixture
def config(config_file: Path) -> Config:
    return load_config(config_file)
