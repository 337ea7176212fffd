"""Recurrence rules: what a user writes, what we store, and when each occurrence falls due."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from common.errors import InvalidInput
from common.recurrence import (
    ByDay,
    Frequency,
    Rule,
    check_series,
    next_occurrence,
    occurrences,
    parse_rule,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(text: str, zone: ZoneInfo) -> datetime:
    """'2025-03-29 09:00' in `zone`, as the UTC instant a caller would hold."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def walk(rule_text: str, start: str, zone: ZoneInfo, count: int) -> list[str]:
    """The first `count` occurrences, found the way the tasks service will: one after another."""
    rule = parse_rule(rule_text)
    series_start = local(start, zone)
    check_series(rule, series_start=series_start, zone=zone, now=series_start)
    found, due = [], series_start
    for _ in range(count - 1):
        following = next_occurrence(rule, series_start=series_start, after=due, zone=zone)
        if following is None:
            break
        found.append(following)
        due = following
    return [f"{d.astimezone(zone):%Y-%m-%d %H:%M%z}" for d in [series_start, *found]]


# Parsing and the canonical form


def test_a_rule_is_stored_in_one_canonical_form() -> None:
    rule = parse_rule("rrule:interval=2;byday=fr,mo,+1mo,mo;freq=monthly;until=20261231")
    assert rule == Rule(
        freq=Frequency.MONTHLY,
        interval=2,
        by_day=(ByDay(0), ByDay(0, 1), ByDay(4)),
        until=date(2026, 12, 31),
    )
    assert str(rule) == "FREQ=MONTHLY;INTERVAL=2;BYDAY=MO,1MO,FR;UNTIL=20261231"
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FREQ=DAILY;INTERVAL=1", "FREQ=DAILY"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1,15,+1", "FREQ=MONTHLY;BYMONTHDAY=-1,1,15"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("FREQ=YEARLY;BYDAY=20MO", "FREQ=YEARLY;BYDAY=20MO"),
        ("FREQ=WEEKLY;COUNT=10", "FREQ=WEEKLY;COUNT=10"),
        ("  FREQ=WEEKLY;UNTIL=20250301T120000Z ", "FREQ=WEEKLY;UNTIL=20250301T120000Z"),
    ],
)
def test_canonical_forms(text: str, canonical: str) -> None:
    assert str(parse_rule(text)) == canonical


def test_a_utc_until_is_an_aware_instant_and_a_date_until_a_local_day() -> None:
    assert parse_rule("FREQ=DAILY;UNTIL=20250301T120000Z").until == datetime(
        2025, 3, 1, 12, tzinfo=UTC
    )
    assert parse_rule("FREQ=DAILY;UNTIL=20250301").until == date(2025, 3, 1)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "the rule is empty"),
        ("FREQ=DAILY;", "empty part (a stray ';')"),
        ("FREQ", "'FREQ' is not a NAME=VALUE part"),
        ("INTERVAL=2", "FREQ is required"),
        ("FREQ=HOURLY", "FREQ=HOURLY is not supported (use DAILY, WEEKLY, MONTHLY or YEARLY)"),
        ("FREQ=SOMETIMES", "FREQ=SOMETIMES is not a frequency"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
        ("FREQ=MONTHLY;BYSETPOS=-1;BYDAY=FR", "BYSETPOS is not supported (supported: FREQ,"),
        ("FREQ=YEARLY;BYMONTH=2", "BYMONTH is not supported"),
        ("FREQ=WEEKLY;WKST=SU", "WKST is not supported"),
        ("FREQ=DAILY;COLOR=RED", "COLOR is not supported"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20300101", "COUNT and UNTIL cannot both be given"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL=0 must be at least 1"),
        ("FREQ=DAILY;INTERVAL=two", "INTERVAL=TWO is not a whole number"),
        ("FREQ=DAILY;INTERVAL=1.5", "INTERVAL=1.5 is not a whole number"),
        ("FREQ=DAILY;INTERVAL=100000", "INTERVAL=100000 is too large for FREQ=DAILY (at most"),
        ("FREQ=YEARLY;INTERVAL=11", "INTERVAL=11 is too large for FREQ=YEARLY (at most 10"),
        ("FREQ=DAILY;COUNT=0", "COUNT=0 is out of range (1-10000)"),
        ("FREQ=DAILY;COUNT=10001", "COUNT=10001 is out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32 is out of range (1-31 or -31..-1)"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY=0 is out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,-32", "BYMONTHDAY=-32 is out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,,2", "BYMONTHDAY= is not a whole number"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY needs FREQ=MONTHLY or YEARLY, not FREQ=WEEKLY"),
        ("FREQ=DAILY;BYMONTHDAY=1", "BYMONTHDAY needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=WEEKLY;BYDAY=MO,XX", "BYDAY=XX is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=MONDAY", "BYDAY=MONDAY is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY=1MO: a numbered weekday needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=DAILY;BYDAY=-1FR", "a numbered weekday needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY=6MO is out of range (1..5 or -5..-1)"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY=0MO is out of range"),
        ("FREQ=YEARLY;BYDAY=-54SU", "BYDAY=-54SU is out of range (1..53 or -53..-1)"),
        ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "BYDAY and BYMONTHDAY cannot be combined"),
        ("FREQ=DAILY;UNTIL=20250101T090000", "must be a date (YYYYMMDD) or a UTC date-time"),
        ("FREQ=DAILY;UNTIL=2025-01-01", "must be a date (YYYYMMDD) or a UTC date-time"),
        ("FREQ=DAILY;UNTIL=20250230", "UNTIL=20250230 is not a valid date"),
        ("FREQ=DAILY;UNTIL=20250101T250000Z", "UNTIL=20250101T250000Z is not a valid date"),
        ("FREQ=DAILY;" + "BYDAY=MO," * 40, "longer than 255 characters"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_part(text: str, detail: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rule(text)
    assert detail in refused.value.detail
    assert refused.value.status == 400
    assert refused.value.extra["errors"][0]["field"] == "recurrence"


# A series' start: one of its occurrences, and not already over


def test_a_due_date_that_is_not_an_occurrence_is_refused_with_the_one_that_would_be() -> None:
    rule = parse_rule("FREQ=WEEKLY;BYDAY=MO")
    wednesday = local("2025-03-05 09:00", BERLIN)
    with pytest.raises(InvalidInput) as refused:
        check_series(rule, series_start=wednesday, zone=BERLIN, now=wednesday)
    assert refused.value.detail == (
        "the due date Wed 2025-03-05 09:00 Europe/Berlin is not an occurrence of "
        "FREQ=WEEKLY;BYDAY=MO; its first occurrence from then is Mon 2025-03-10 09:00"
    )


def test_a_rule_whose_until_precedes_the_due_date_is_refused() -> None:
    start = local("2025-03-05 09:00", BERLIN)
    for text in ("FREQ=DAILY;UNTIL=20250304", "FREQ=DAILY;UNTIL=20250305T075959Z"):
        with pytest.raises(InvalidInput, match=r"UNTIL in .* is before the due date"):
            check_series(parse_rule(text), series_start=start, zone=BERLIN, now=start)


def test_a_series_that_is_over_already_is_refused() -> None:
    start = local("2025-03-05 09:00", BERLIN)
    later = local("2025-03-10 12:00", BERLIN)
    with pytest.raises(InvalidInput, match="has no occurrence after now"):
        check_series(parse_rule("FREQ=DAILY;COUNT=3"), series_start=start, zone=BERLIN, now=later)
    check_series(parse_rule("FREQ=DAILY;COUNT=7"), series_start=start, zone=BERLIN, now=later)


def test_a_series_due_in_the_future_may_hold_a_single_occurrence() -> None:
    start = local("2025-03-05 09:00", BERLIN)
    earlier = local("2025-03-04 12:00", BERLIN)
    check_series(parse_rule("FREQ=DAILY;COUNT=1"), series_start=start, zone=BERLIN, now=earlier)


def test_a_walk_of_centuries_is_refused_not_taken() -> None:
    # dateutil walks from the series' start; a due date ~300 years on is refused, quickly.
    rule = parse_rule("FREQ=DAILY")
    start = local("1700-01-01 09:00", BERLIN)
    with pytest.raises(InvalidInput, match="more than 100000 occurrences") as refused:
        next_occurrence(
            rule, series_start=start, after=local("2025-01-01 09:00", BERLIN), zone=BERLIN
        )
    assert refused.value.extra["errors"][0]["field"] == "due_date"
    with pytest.raises(InvalidInput, match="more than 100000 occurrences"):
        check_series(rule, series_start=start, zone=BERLIN, now=local("2025-01-01 09:00", BERLIN))


def test_the_ends_of_the_calendar_give_answers_not_crashes() -> None:
    rule = parse_rule("FREQ=DAILY")
    start = local("2025-03-05 09:00", BERLIN)
    dawn = datetime(1, 1, 1, tzinfo=UTC)
    assert next_occurrence(rule, series_start=start, after=dawn, zone=BERLIN) == start
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14
    with pytest.raises(InvalidInput, match="out of range in Pacific/Kiritimati"):
        next_occurrence(
            rule, series_start=start, after=datetime(9999, 12, 31, 23, tzinfo=UTC), zone=kiritimati
        )


def test_naive_datetimes_are_a_programming_error() -> None:
    rule = parse_rule("FREQ=DAILY")
    aware = local("2025-03-05 09:00", BERLIN)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence(rule, series_start=aware, after=datetime(2025, 3, 6), zone=BERLIN)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence(rule, series_start=datetime(2025, 3, 6), after=aware, zone=BERLIN)


# Daylight saving time: the wall time holds


def test_every_day_at_nine_stays_at_nine_in_berlin_across_spring_forward() -> None:
    assert walk("FREQ=DAILY", "2025-03-29 09:00", BERLIN, 3) == [
        "2025-03-29 09:00+0100",
        "2025-03-30 09:00+0200",
        "2025-03-31 09:00+0200",
    ]


def test_every_day_at_nine_stays_at_nine_in_berlin_across_fall_back() -> None:
    assert walk("FREQ=DAILY", "2025-10-25 09:00", BERLIN, 3) == [
        "2025-10-25 09:00+0200",
        "2025-10-26 09:00+0100",
        "2025-10-27 09:00+0100",
    ]


def test_weekly_in_new_york_keeps_its_wall_time_in_both_directions() -> None:
    assert walk("FREQ=WEEKLY;BYDAY=SU", "2025-03-02 08:30", NEW_YORK, 2) == [
        "2025-03-02 08:30-0500",
        "2025-03-09 08:30-0400",
    ]
    assert walk("FREQ=WEEKLY;BYDAY=SU", "2025-10-26 08:30", NEW_YORK, 3) == [
        "2025-10-26 08:30-0400",
        "2025-11-02 08:30-0500",
        "2025-11-09 08:30-0500",
    ]


def test_a_wall_time_in_the_spring_gap_moves_forward_by_the_gap_that_day_only() -> None:
    # 02:30 does not exist on 30 March in Berlin: RFC 5545 3.3.5 reads it with the offset before
    # the gap, which is 03:30 CEST. The next day is back at 02:30.
    assert walk("FREQ=DAILY", "2025-03-29 02:30", BERLIN, 3) == [
        "2025-03-29 02:30+0100",
        "2025-03-30 03:30+0200",
        "2025-03-31 02:30+0200",
    ]
    assert walk("FREQ=DAILY", "2025-03-08 02:30", NEW_YORK, 2)[1] == "2025-03-09 03:30-0400"


def test_the_shifted_occurrence_is_found_after_an_earlier_wall_time_with_a_later_offset() -> None:
    # That day's 02:30 is 03:30 CEST (01:30 UTC). A due date moved to 03:10 CEST (01:10 UTC) is
    # earlier, though its wall time is later than 02:30: the next occurrence is still 03:30.
    rule = parse_rule("FREQ=DAILY")
    start = local("2025-03-29 02:30", BERLIN)
    moved = local("2025-03-30 03:10", BERLIN)
    following = next_occurrence(rule, series_start=start, after=moved, zone=BERLIN)
    assert following == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


def test_a_wall_time_in_the_autumn_fold_is_its_first_instance() -> None:
    assert walk("FREQ=DAILY", "2025-10-25 02:30", BERLIN, 3) == [
        "2025-10-25 02:30+0200",
        "2025-10-26 02:30+0200",
        "2025-10-27 02:30+0100",
    ]
    assert walk("FREQ=DAILY", "2025-11-01 01:30", NEW_YORK, 2)[1] == "2025-11-02 01:30-0400"


def test_a_start_in_the_second_pass_of_a_fold_continues_the_next_day() -> None:
    rule = parse_rule("FREQ=DAILY")
    second_pass = datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=BERLIN).astimezone(UTC)
    check_series(rule, series_start=second_pass, zone=BERLIN, now=second_pass)
    following = next_occurrence(rule, series_start=second_pass, after=second_pass, zone=BERLIN)
    assert following == local("2025-10-27 02:30", BERLIN)


def test_a_day_a_gap_swallows_whole_is_not_a_second_occurrence() -> None:
    # Samoa skipped 30 December 2011: that day's 09:00, read with the offset before the gap, is
    # the same instant as 31 December 09:00. It is one occurrence, not two.
    apia = ZoneInfo("Pacific/Apia")
    assert walk("FREQ=DAILY", "2011-12-29 09:00", apia, 3) == [
        "2011-12-29 09:00-1000",
        "2011-12-31 09:00+1400",
        "2012-01-01 09:00+1400",
    ]


# Month ends and leap years


def test_the_31st_skips_the_months_without_one() -> None:
    # RFC 5545: an occurrence on a date that does not exist is skipped, never moved.
    assert walk("FREQ=MONTHLY", "2025-01-31 09:00", BERLIN, 4) == [
        "2025-01-31 09:00+0100",
        "2025-03-31 09:00+0200",
        "2025-05-31 09:00+0200",
        "2025-07-31 09:00+0200",
    ]
    assert walk("FREQ=MONTHLY;BYMONTHDAY=31", "2025-01-31 09:00", BERLIN, 2)[1].startswith(
        "2025-03-31"
    )


def test_the_last_day_of_the_month_is_bymonthday_minus_one() -> None:
    days = walk("FREQ=MONTHLY;BYMONTHDAY=-1", "2023-12-31 18:00", BERLIN, 5)
    assert [d[:10] for d in days] == [
        "2023-12-31",
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]


def test_the_last_friday_of_the_month() -> None:
    days = walk("FREQ=MONTHLY;BYDAY=-1FR", "2025-01-31 16:00", NEW_YORK, 3)
    assert [d[:10] for d in days] == ["2025-01-31", "2025-02-28", "2025-03-28"]


def test_the_29th_of_february_comes_back_in_leap_years_only() -> None:
    days = walk("FREQ=YEARLY", "2024-02-29 09:00", BERLIN, 3)
    assert [d[:10] for d in days] == ["2024-02-29", "2028-02-29", "2032-02-29"]
    # 2100 is not a leap year (divisible by 100, not by 400).
    days = walk("FREQ=YEARLY", "2096-02-29 09:00", BERLIN, 2)
    assert [d[:10] for d in days] == ["2096-02-29", "2104-02-29"]


def test_every_second_week_on_two_days() -> None:
    days = walk("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH", "2025-03-04 10:00", BERLIN, 5)
    assert [d[:10] for d in days] == [
        "2025-03-04",
        "2025-03-06",
        "2025-03-18",
        "2025-03-20",
        "2025-04-01",
    ]


def test_weekdays_only() -> None:
    days = walk("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "2025-03-06 09:00", BERLIN, 4)
    assert [d[:10] for d in days] == ["2025-03-06", "2025-03-07", "2025-03-10", "2025-03-11"]


# The end of a series


def test_count_counts_from_the_series_start_and_then_there_is_none() -> None:
    days = walk("FREQ=DAILY;COUNT=3", "2025-03-29 09:00", BERLIN, 10)
    assert [d[:10] for d in days] == ["2025-03-29", "2025-03-30", "2025-03-31"]


def test_count_counts_from_the_start_not_from_the_occurrence_being_completed() -> None:
    rule = parse_rule("FREQ=WEEKLY;COUNT=3")
    start = local("2025-03-03 09:00", BERLIN)
    third = local("2025-03-17 09:00", BERLIN)
    assert next_occurrence(rule, series_start=start, after=start, zone=BERLIN) == local(
        "2025-03-10 09:00", BERLIN
    )
    assert next_occurrence(rule, series_start=start, after=third, zone=BERLIN) is None


def test_a_due_date_moved_by_hand_continues_with_the_first_occurrence_after_it() -> None:
    rule = parse_rule("FREQ=WEEKLY;BYDAY=MO")
    start = local("2025-03-03 09:00", BERLIN)
    postponed = local("2025-03-12 17:00", BERLIN)  # this week's Monday task, done on Wednesday
    assert next_occurrence(rule, series_start=start, after=postponed, zone=BERLIN) == local(
        "2025-03-17 09:00", BERLIN
    )


def test_a_utc_until_is_inclusive_to_the_second() -> None:
    # 2025-03-31 09:00 CEST is 07:00 UTC.
    included = walk("FREQ=DAILY;UNTIL=20250331T070000Z", "2025-03-29 09:00", BERLIN, 10)
    assert [d[:10] for d in included] == ["2025-03-29", "2025-03-30", "2025-03-31"]
    excluded = walk("FREQ=DAILY;UNTIL=20250331T065959Z", "2025-03-29 09:00", BERLIN, 10)
    assert [d[:10] for d in excluded] == ["2025-03-29", "2025-03-30"]


def test_a_date_until_includes_that_whole_local_day() -> None:
    days = walk("FREQ=DAILY;UNTIL=20250331", "2025-03-29 23:30", BERLIN, 10)
    assert [d[:10] for d in days] == ["2025-03-29", "2025-03-30", "2025-03-31"]


def test_occurrences_lists_the_series_in_utc() -> None:
    series = occurrences(
        parse_rule("FREQ=DAILY;COUNT=2"),
        series_start=local("2025-03-29 09:00", BERLIN),
        zone=BERLIN,
    )
    assert list(series) == [
        datetime(2025, 3, 29, 8, tzinfo=UTC),
        datetime(2025, 3, 30, 7, tzinfo=UTC),
    ]
