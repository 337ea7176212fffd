"""A task list query names its selection canonically: one page, one cache entry and one cursor
fingerprint, however a caller spells the same bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from common.tasks.queries import parse_list_query


def test_one_instant_in_two_offsets_is_one_key() -> None:
    """The API's query parameters arrive in UTC already; any other caller (a job, a warm-up)
    may hand over the offset it was given."""
    start = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    paris = timezone(timedelta(hours=1))
    in_utc = parse_list_query(due_from=start, due_to=start + timedelta(days=1))
    in_paris = parse_list_query(
        due_from=start.astimezone(paris), due_to=(start + timedelta(days=1)).astimezone(paris)
    )
    assert in_paris.cache_key() == in_utc.cache_key()
    assert in_paris.fingerprint() == in_utc.fingerprint()
