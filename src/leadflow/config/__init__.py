"""The rules file (``leadflow.yaml``): its schema, its loader, the demo config."""

from leadflow.config.loader import ConfigError, ConfigIssue, load_config, load_config_text
from leadflow.config.schema import Config, ConsentItem, Form

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConsentItem",
    "Form",
    "load_config",
    "load_config_text",
]
