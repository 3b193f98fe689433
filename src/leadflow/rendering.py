"""The Jinja environment of the server-rendered pages (src/leadflow/templates)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(
    loader=PackageLoader("leadflow", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file of templates/) filled in with ``context``, escaped."""
    return _env.get_template(template).render(**context)
