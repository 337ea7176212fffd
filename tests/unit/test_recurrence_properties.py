"""Property: for any rule of the subset, in any zone, the series the tasks service walks (one
`next_occurrence` after another) is strictly increasing, every date in it satisfies the rule as
RFC 5545 words it (checked here with plain calendar arithmetic, not with dateutil), and it is
exactly dateutil's own expansion of the same rule with a zone-aware start."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common.errors import InvalidInput
from common.recurrence import (
    ORDINAL_LIMIT,
    WEEKDAYS,
    Frequency,
    Rule,
    check_series,
    next_occurrence,
    parse_rule,
)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # DST changes at midnight
    "Pacific/Apia",  # skipped a whole day in 2011
    "Asia/Kolkata",
]
WALKED = 25


@st.composite
def series(draw: st.DrawFn) -> tuple[str, datetime]:
    """A rule's text, and a wall time near which its series starts."""
    near = draw(st.datetimes(datetime(2000, 1, 1), datetime(2060, 1, 1))).replace(second=0)
    freq = draw(st.sampled_from(list(Frequency)))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 4) | st.just(1))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    limit = ORDINAL_LIMIT.get(freq)
    by = draw(st.sampled_from(["none", "day", "monthday"] if limit else ["none", "day"]))
    if by == "day":
        ordinals = st.just("")
        if limit:
            ordinals |= st.integers(1, limit).map(str) | st.integers(-limit, -1).map(str)
        days = draw(
            st.lists(st.tuples(ordinals, st.sampled_from(WEEKDAYS)), min_size=1, max_size=3)
        )
        parts.append("BYDAY=" + ",".join(n + day for n, day in days))
    elif by == "monthday":
        monthdays = st.integers(1, 31) | st.integers(-31, -1)
        parts.append(
            "BYMONTHDAY=" + ",".join(map(str, draw(st.lists(monthdays, min_size=1, max_size=3))))
        )
    end = draw(st.sampled_from(["none", "count", "until_date", "until_utc"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 30))}")
    elif end != "none":
        until = near + draw(st.timedeltas(timedelta(days=-30), timedelta(days=3 * 365)))
        parts.append(
            f"UNTIL={until:%Y%m%d}" if end == "until_date" else f"UNTIL={until:%Y%m%dT%H%M%S}Z"
        )
    return ";".join(parts), near


def _nth_from_start_and_end(day: int, length: int) -> tuple[int, int]:
    """Which n-th (and which n-th from the end) of its weekday in a span a 1-based day is."""
    return (day - 1) // 7 + 1, -((length - day) // 7 + 1)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _satisfies(rule: Rule, start: datetime, day: date) -> bool:
    """RFC 5545's reading of the rule, for one date, in plain calendar arithmetic."""
    start_day = start.date()
    steps = {
        Frequency.DAILY: (day - start_day).days,
        Frequency.WEEKLY: (_monday(day) - _monday(start_day)).days // 7,
        Frequency.MONTHLY: (day.year - start.year) * 12 + day.month - start.month,
        Frequency.YEARLY: day.year - start.year,
    }[rule.freq]
    if steps % rule.interval:
        return False
    month_length = calendar.monthrange(day.year, day.month)[1]
    if rule.by_month_day:
        return day.day in rule.by_month_day or day.day - month_length - 1 in rule.by_month_day
    if rule.by_day:
        year_length = 366 if calendar.isleap(day.year) else 365
        within = {
            Frequency.MONTHLY: _nth_from_start_and_end(day.day, month_length),
            Frequency.YEARLY: _nth_from_start_and_end(day.timetuple().tm_yday, year_length),
        }.get(rule.freq, ())
        return any(
            by.weekday == day.weekday() and (by.ordinal is None or by.ordinal in within)
            for by in rule.by_day
        )
    return {
        Frequency.DAILY: True,
        Frequency.WEEKLY: day.weekday() == start.weekday(),
        Frequency.MONTHLY: day.day == start.day,
        Frequency.YEARLY: (day.month, day.day) == (start.month, start.day),
    }[rule.freq]


def _intended_wall_time(instant: datetime, start: datetime, zone: ZoneInfo) -> datetime:
    """The wall time at the series' time of day that reads as `instant` (a gap moves it)."""
    local_day = instant.astimezone(zone).date()
    for day in (local_day, local_day - timedelta(days=1)):
        wall = datetime.combine(day, start.time())
        if wall.replace(tzinfo=zone).astimezone(UTC) == instant:
            return wall
    raise AssertionError(f"{instant} is not at the series' time of day {start.time()}")


def _dateutil_expansion(rule: Rule, start: datetime, zone: ZoneInfo) -> list[datetime]:
    """dateutil on its own: a zone-aware DTSTART, and its own UNTIL handling for a UTC UNTIL."""
    text = str(rule)
    date_until = rule.until if type(rule.until) is date else None
    if date_until:
        text = text.replace(f";UNTIL={date_until:%Y%m%d}", "")
    expansion = rrulestr(text, dtstart=start.replace(tzinfo=zone))
    found: list[datetime] = []
    for aware in expansion:
        if date_until and aware.date() > date_until:
            break
        instant = aware.astimezone(UTC)
        if not found or instant > found[-1]:
            found.append(instant)
        if len(found) == WALKED:
            break
    return found


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much],
)
@given(drawn=series(), zone_name=st.sampled_from(ZONES))
def test_the_walked_series_matches_the_rule_and_dateutil(
    drawn: tuple[str, datetime], zone_name: str
) -> None:
    rule_text, near = drawn
    rule = parse_rule(rule_text)
    zone = ZoneInfo(zone_name)
    # A series starts on one of its occurrences: take the rule's first one from `near`.
    first = next(iter(rrulestr(rule_text.split(";UNTIL")[0], dtstart=near)), None)
    assume(first is not None and first.year < 9000)
    assert first is not None
    series_start = first.replace(tzinfo=zone).astimezone(UTC)
    assume(series_start.astimezone(zone).replace(tzinfo=None) == first)  # not in a gap
    try:
        check_series(rule, series_start=series_start, zone=zone, now=series_start - timedelta(1))
    except InvalidInput:
        assume(False)

    walked = [series_start]
    while len(walked) < WALKED:
        following = next_occurrence(rule, series_start=series_start, after=walked[-1], zone=zone)
        if following is None:
            break
        walked.append(following)

    assert all(a < b for a, b in itertools.pairwise(walked))
    for instant in walked:
        wall = _intended_wall_time(instant, first, zone)
        assert _satisfies(rule, first, wall.date()), f"{wall} does not satisfy {rule}"
        if isinstance(rule.until, datetime):
            assert instant <= rule.until
        elif rule.until is not None:
            assert wall.date() <= rule.until
    if rule.count is not None:
        assert len(walked) <= rule.count
    assert walked == _dateutil_expansion(rule, first, zone)


def test_the_oracle_is_not_vacuous() -> None:
    """`_satisfies` refuses what the rule does not allow (a property test is only as good)."""
    start = datetime(2025, 3, 3, 9)  # a Monday
    assert not _satisfies(parse_rule("FREQ=WEEKLY;INTERVAL=2"), start, date(2025, 3, 10))
    assert _satisfies(parse_rule("FREQ=WEEKLY;INTERVAL=2"), start, date(2025, 3, 17))
    assert not _satisfies(parse_rule("FREQ=MONTHLY;BYDAY=-1FR"), start, date(2025, 3, 21))
    assert _satisfies(parse_rule("FREQ=MONTHLY;BYDAY=-1FR"), start, date(2025, 3, 28))
    assert not _satisfies(parse_rule("FREQ=MONTHLY;BYMONTHDAY=-1"), start, date(2025, 2, 27))
    assert _satisfies(parse_rule("FREQ=MONTHLY;BYMONTHDAY=-1"), start, date(2025, 2, 28))
    assert not _satisfies(parse_rule("FREQ=YEARLY"), start, date(2026, 3, 4))
    assert not _satisfies(parse_rule("FREQ=DAILY;INTERVAL=3"), start, date(2025, 3, 5))
    assert not _satisfies(parse_rule("FREQ=YEARLY;BYDAY=1MO"), start, date(2025, 1, 13))
