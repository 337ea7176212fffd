"""Render mails from Jinja2 templates: a subject, a plain-text part and an HTML part."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_mail(name: str, **context: Any) -> RenderedMail:
    """Render `<name>.subject.txt`, `<name>.txt` and `<name>.html` with the same context."""
    env = _environment()
    subject = env.get_template(f"{name}.subject.txt").render(**context).strip()
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=env.get_template(f"{name}.txt").render(**context),
        html=env.get_template(f"{name}.html").render(**context),
    )
