"""Job arguments travel as JSON: ids and instants as strings, parsed here."""

from __future__ import annotations

from datetime import UTC, datetime


def as_of(now: str | None) -> datetime:
    """The instant a scheduled job runs for: `now` when an operator (or a test) gave one
    (ISO 8601), else this moment."""
    return datetime.fromisoformat(now) if now else datetime.now(UTC)
