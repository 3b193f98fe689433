"""Load ``leadflow.yaml`` and report every mistake with its file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from leadflow.config.schema import Config

DEMO_CONFIG = "demo.yaml"
STARTER_CONFIG = "starter.yaml"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """The config file is not valid; ``issues`` lists each mistake."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


def _line_of(root: Any, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest part of ``loc`` that exists in the YAML tree."""
    node, line = root, 1 if isinstance(root, CommentedMap) else None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _field_name(loc: Sequence[int | str]) -> str:
    # pydantic adds a pseudo-location for validators of the whole model; drop it.
    parts = [p for p in loc if not (isinstance(p, str) and p.startswith("__"))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load_config_text(text: str, filename: str = "<config>") -> Config:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [ConfigIssue(filename, line, "", f"not valid YAML: {exc.problem}")]
        ) from exc
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(filename, None, "", f"not valid YAML: {exc}")]) from exc
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(filename, 1, "", "the file must be a mapping of sections")])
    try:
        return Config.model_validate(_plain(tree))
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = err["loc"]
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown setting (check the spelling)"
            issues.append(ConfigIssue(filename, _line_of(tree, loc), _field_name(loc), message))
        issues.sort(key=lambda issue: issue.line or 0)
        raise ConfigError(issues) from exc


def load_config(path: Path | None) -> Config:
    """Load the config at ``path``, or the built-in demo config when ``path`` is None."""
    if path is None:
        return load_config_text(builtin_text(DEMO_CONFIG), "<built-in demo config>")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot be read: {exc.strerror}")]
        ) from exc
    return load_config_text(text, str(path))


def builtin_text(name: str) -> str:
    return resources.files("leadflow.config").joinpath(name).read_text(encoding="utf-8")
