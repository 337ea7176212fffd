"""Recurring tasks: the RFC 5545 RRULE subset we accept, and when its next occurrence is due.

Supported parts: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `BYDAY`, `BYMONTHDAY`, `COUNT`,
`UNTIL`. Anything else is refused with a 400 that names the part, so a stored rule is always one
we can evaluate. Expansion is `dateutil.rrule`'s, never our own date arithmetic.

A series is evaluated on naive wall-clock times in the user's IANA zone and only then given the
zone, so "every day at 09:00 Europe/Berlin" stays at 09:00 local across DST changes. A wall time
that does not exist (spring-forward gap) or exists twice (fall-back fold) is read as RFC 5545
section 3.3.5 reads an explicit local DATE-TIME, which is what `zoneinfo` does with `fold=0`:
in a gap, with the offset before the gap (02:30 in Berlin's gap is 03:30 CEST); in a fold, the
first of the two (02:30 CEST, not 02:30 CET).

Month ends follow RFC 5545 too: an occurrence on a date that does not exist is skipped, not
moved (a monthly series on the 31st has no February occurrence); `BYMONTHDAY=-1` means "the
last day of the month". A yearly series from 29 February occurs in leap years only.

Where RFC 5545 is silent or loose, these are our readings: a date-only UNTIL (RFC 5545 wants
UNTIL to have DTSTART's type) ends the series with that whole local day; BYDAY together with
BYMONTHDAY, and BYMONTHDAY under DAILY or WEEKLY, are refused, because such intersections can
be empty and dateutil then walks to the year 9999 before it says so (0.5 s of CPU, measured).

What the caller stores: the canonical rule text (`str(rule)`), the series' start (the due date
the rule was attached to, which must be one of its occurrences; COUNT counts from it, so it
must not move when later occurrences are created or skipped) and the zone it was evaluated in
(so a later change of the user's zone does not shift a running series). Give the series a new
start whenever the rule itself changes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal, NoReturn
from zoneinfo import ZoneInfo

from dateutil import rrule as du

from common.errors import InvalidInput

FIELD = "recurrence"
SUPPORTED_PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL")
MAX_RULE_LENGTH = 255
MAX_COUNT = 10_000
# dateutil walks a series from its start: this many occurrences (a daily series of about 270
# years, some 0.1 s) is as far as one call walks.
MAX_WALKED = 100_000
# More than any change of UTC offset ever made (Samoa's 24 h in 2011): a wall time this much
# before another is the earlier instant, whatever the offsets.
_OFFSET_MARGIN = timedelta(days=2)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class Frequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    YEARLY = "YEARLY"


# About ten years between periods at most: anything sparser is a typo, not a task.
MAX_INTERVAL = {
    Frequency.DAILY: 3660,
    Frequency.WEEKLY: 520,
    Frequency.MONTHLY: 120,
    Frequency.YEARLY: 10,
}
# "2MO" (the second Monday) means something only within a month or a year (RFC 5545 3.3.10).
ORDINAL_LIMIT = {Frequency.MONTHLY: 5, Frequency.YEARLY: 53}
_DATEUTIL_FREQ: dict[Frequency, Literal[0, 1, 2, 3]] = {
    Frequency.DAILY: du.DAILY,
    Frequency.WEEKLY: du.WEEKLY,
    Frequency.MONTHLY: du.MONTHLY,
    Frequency.YEARLY: du.YEARLY,
}
_BYDAY_ITEM = re.compile(r"([+-]?\d{1,2})?([A-Z]{2})")
_INTEGER = re.compile(r"[+-]?\d+")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")


@dataclass(frozen=True, slots=True, order=True)
class ByDay:
    """One BYDAY entry: a weekday (0 = Monday), optionally the n-th of the month or year."""

    weekday: int
    ordinal: int | None = None

    def __str__(self) -> str:
        return f"{self.ordinal or ''}{WEEKDAYS[self.weekday]}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule; build it with `parse_rule`. `str(rule)` is the canonical form to store.

    `until` is a `date` (the series ends with that local day) or a UTC-aware `datetime`.
    """

    freq: Frequency
    interval: int = 1
    by_day: tuple[ByDay, ...] = ()
    by_month_day: tuple[int, ...] = ()
    count: int | None = None
    until: date | None = None

    def __str__(self) -> str:
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.by_day:
            parts.append("BYDAY=" + ",".join(map(str, self.by_day)))
        if self.by_month_day:
            parts.append("BYMONTHDAY=" + ",".join(map(str, self.by_month_day)))
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if isinstance(self.until, datetime):
            parts.append(f"UNTIL={self.until:%Y%m%dT%H%M%SZ}")
        elif self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%d}")
        return ";".join(parts)


def _refuse(detail: str) -> NoReturn:
    raise InvalidInput(detail, field=FIELD)


def parse_rule(text: str) -> Rule:
    """Parse and validate a rule (an optional `RRULE:` prefix and any letter case accepted).

    Raises `InvalidInput` (field `recurrence`) naming the part that is wrong.
    """
    if len(text) > MAX_RULE_LENGTH:
        _refuse(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    body = text.strip().upper().removeprefix("RRULE:")
    if not body:
        _refuse("the rule is empty; it needs at least FREQ, e.g. FREQ=WEEKLY")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        if not part:
            _refuse("the rule has an empty part (a stray ';')")
        name, separator, value = part.partition("=")
        if not separator or not name or not value:
            _refuse(f"{part!r} is not a NAME=VALUE part")
        if name not in SUPPORTED_PARTS:
            _refuse(f"{name} is not supported (supported: {', '.join(SUPPORTED_PARTS)})")
        if name in parts:
            _refuse(f"{name} is given twice")
        parts[name] = value

    if "FREQ" not in parts:
        _refuse("FREQ is required, e.g. FREQ=WEEKLY")
    freq = _frequency(parts["FREQ"])
    if "COUNT" in parts and "UNTIL" in parts:
        _refuse("COUNT and UNTIL cannot both be given (RFC 5545): pick one way to end the series")
    by_day = _by_day(parts["BYDAY"], freq) if "BYDAY" in parts else ()
    by_month_day = _by_month_day(parts["BYMONTHDAY"], freq) if "BYMONTHDAY" in parts else ()
    if by_day and by_month_day:
        _refuse(
            "BYDAY and BYMONTHDAY cannot be combined: only days matching both would occur, "
            "which is rarely meant and can be none at all"
        )
    return Rule(
        freq=freq,
        interval=_interval(parts["INTERVAL"], freq) if "INTERVAL" in parts else 1,
        by_day=by_day,
        by_month_day=by_month_day,
        count=_count(parts["COUNT"]) if "COUNT" in parts else None,
        until=_until(parts["UNTIL"]) if "UNTIL" in parts else None,
    )


def _frequency(value: str) -> Frequency:
    try:
        return Frequency(value)
    except ValueError:
        if value in {"SECONDLY", "MINUTELY", "HOURLY"}:
            _refuse(f"FREQ={value} is not supported (use DAILY, WEEKLY, MONTHLY or YEARLY)")
        _refuse(f"FREQ={value} is not a frequency (use DAILY, WEEKLY, MONTHLY or YEARLY)")


def _integer(name: str, value: str) -> int:
    if not _INTEGER.fullmatch(value):
        _refuse(f"{name}={value} is not a whole number")
    return int(value)


def _interval(value: str, freq: Frequency) -> int:
    interval = _integer("INTERVAL", value)
    if interval < 1:
        _refuse(f"INTERVAL={value} must be at least 1")
    if interval > MAX_INTERVAL[freq]:
        _refuse(
            f"INTERVAL={value} is too large for FREQ={freq} "
            f"(at most {MAX_INTERVAL[freq]}, about ten years)"
        )
    return interval


def _count(value: str) -> int:
    count = _integer("COUNT", value)
    if not 1 <= count <= MAX_COUNT:
        _refuse(f"COUNT={value} is out of range (1-{MAX_COUNT})")
    return count


def _by_day(value: str, freq: Frequency) -> tuple[ByDay, ...]:
    days = set()
    for item in value.split(","):
        match = _BYDAY_ITEM.fullmatch(item)
        if not match or match[2] not in WEEKDAYS:
            _refuse(f"BYDAY={item} is not a weekday (MO, TU, WE, TH, FR, SA, SU, e.g. 1MO, -1FR)")
        ordinal = int(match[1]) if match[1] else None
        if ordinal is not None:
            limit = ORDINAL_LIMIT.get(freq)
            if limit is None:
                _refuse(f"BYDAY={item}: a numbered weekday needs FREQ=MONTHLY or YEARLY")
            if not (1 <= abs(ordinal) <= limit):
                _refuse(f"BYDAY={item} is out of range (1..{limit} or -{limit}..-1)")
        days.add(ByDay(WEEKDAYS.index(match[2]), ordinal))
    return tuple(sorted(days, key=lambda day: (day.weekday, day.ordinal or 0)))


def _by_month_day(value: str, freq: Frequency) -> tuple[int, ...]:
    if freq not in (Frequency.MONTHLY, Frequency.YEARLY):
        _refuse(f"BYMONTHDAY needs FREQ=MONTHLY or YEARLY, not FREQ={freq}")
    days = set()
    for item in value.split(","):
        day = _integer("BYMONTHDAY", item)
        if not (1 <= abs(day) <= 31):
            _refuse(f"BYMONTHDAY={item} is out of range (1-31 or -31..-1)")
        days.add(day)
    return tuple(sorted(days))


def _until(value: str) -> date:
    match = _UNTIL.fullmatch(value)
    if not match or (match[2] and not match[3]):
        _refuse(f"UNTIL={value} must be a date (YYYYMMDD) or a UTC date-time (YYYYMMDDTHHMMSSZ)")
    try:
        # Python 3.11 reads the basic ISO forms; "Z" gives a UTC-aware datetime.
        return datetime.fromisoformat(value) if match[2] else date.fromisoformat(value)
    except ValueError:
        _refuse(f"UNTIL={value} is not a valid date")


def _wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an aware instant, in whole seconds as RRULEs count."""
    if instant.tzinfo is None:
        raise ValueError("expected a timezone-aware datetime")
    try:
        return instant.astimezone(zone).replace(tzinfo=None, microsecond=0)
    except OverflowError:
        raise InvalidInput(f"{instant} is out of range in {zone.key}", field="due_date") from None


def _expansion(rule: Rule, start: datetime) -> du.rrule:
    """dateutil's rule over naive wall times; a date UNTIL is inclusive of its whole day."""
    date_until = rule.until if not isinstance(rule.until, datetime) else None
    return du.rrule(
        _DATEUTIL_FREQ[rule.freq],
        dtstart=start,
        interval=rule.interval,
        wkst=du.MO,
        byweekday=[du.weekday(day.weekday, day.ordinal) for day in rule.by_day] or None,
        bymonthday=rule.by_month_day or None,
        count=rule.count,
        until=datetime.combine(date_until, time.max) if date_until else None,
    )


def occurrences(rule: Rule, *, series_start: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """Every occurrence of the series, in order, as UTC-aware datetimes (whole seconds).

    A wall time that a gap of a day or more swallows (Samoa skipped 30 December 2011) lands on
    the next day's instant; it is yielded once.
    """
    return _instants(rule, _expansion(rule, _wall_time(series_start, zone)), zone)


def _instants(rule: Rule, walls: Iterable[datetime], zone: ZoneInfo) -> Iterator[datetime]:
    previous: datetime | None = None
    for wall in walls:
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if isinstance(rule.until, datetime) and instant > rule.until:
            return
        if previous is None or instant > previous:
            previous = instant
            yield instant


def next_occurrence(
    rule: Rule, *, series_start: datetime, after: datetime, zone: ZoneInfo
) -> datetime | None:
    """The first occurrence strictly after `after` (UTC-aware), or None once COUNT/UNTIL end it.

    `after` is the due date of the occurrence being completed or skipped; it may have been moved
    by hand, and the next occurrence is then the first one after where it was moved to.
    dateutil walks every occurrence from the series' start to get there, so a walk longer than
    MAX_WALKED (a due date centuries away from its series' start) is refused, not taken.
    """
    earliest = _wall_time(after, zone)
    with contextlib.suppress(OverflowError):  # within the calendar's first two days, keep it
        earliest -= _OFFSET_MARGIN
    walls = _expansion(rule, _wall_time(series_start, zone))
    return next((due for due in _instants(rule, _from(walls, earliest), zone) if due > after), None)


def _from(walls: Iterable[datetime], earliest: datetime) -> Iterator[datetime]:
    """The wall times from `earliest` on, the ones before it skipped without a zone lookup."""
    for walked, wall in enumerate(walls, start=1):
        if walked > MAX_WALKED:
            raise InvalidInput(
                f"more than {MAX_WALKED} occurrences lie between the start of this series and "
                "this due date; start a new series from a recent due date",
                field="due_date",
            )
        if wall >= earliest:
            yield wall


def check_series(rule: Rule, *, series_start: datetime, zone: ZoneInfo, now: datetime) -> None:
    """Refuse a series whose start is not one of its occurrences, or that is over already.

    RFC 5545 leaves a series whose DTSTART does not match its rule undefined (dateutil then
    leaves the start out, and COUNT would not count it), so such a due date is refused with the
    date that would work instead.
    """
    start = _wall_time(series_start, zone)
    first = next(iter(_expansion(rule, start)), None)
    if first is not None and first != start:
        _refuse(
            f"the due date {_describe(start)} {zone.key} is not an occurrence of {rule}; "
            f"its first occurrence from then is {_describe(first)}"
        )
    if next(occurrences(rule, series_start=series_start, zone=zone), None) is None:
        _refuse(f"UNTIL in {rule} is before the due date {_describe(start)} {zone.key}")
    if next_occurrence(rule, series_start=series_start, after=now, zone=zone) is None:
        _refuse(
            f"{rule} from {_describe(start)} {zone.key} has no occurrence after now "
            "(COUNT or UNTIL ended it)"
        )


def _describe(wall: datetime) -> str:
    return f"{wall:%a %Y-%m-%d %H:%M}"
