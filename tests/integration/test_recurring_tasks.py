"""Recurring tasks through the API: rules attached and refused, occurrences created by
completion (once), skipped, stopped, and evaluated in the owner's zone across DST changes,
month ends and leap years. The rule arithmetic itself has unit and property tests
(tests/unit/test_recurrence*.py); these check what a user sees."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.models import Task
from tests.support.factories import Account, register
from tests.support.reminders import claim
from tests.support.rows import verify_address
from tests.support.tasks import TASKS, assign, create_category, create_task

ME = "/api/v1/users/me"


def local(zone: str, *args: int) -> str:
    """An ISO due date: wall time `args` in `zone`."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).isoformat()  # type: ignore[misc]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def daily(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    """A task due on Monday 4 January 2027 at 09:00 UTC, recurring every day."""
    return await create_task(
        client, account, due_date="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY"
    )


async def in_zone(client: httpx.AsyncClient, account: Account, zone: str) -> None:
    response = await client.patch(ME, json={"timezone": zone}, headers=account.headers)
    assert response.status_code == 200, response.text


async def complete(
    client: httpx.AsyncClient, account: Account, task: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "completed"},
        headers={**account.headers, "If-Match": "*", **headers},
    )


async def completed_next(
    client: httpx.AsyncClient, account: Account, task: dict[str, Any]
) -> dict[str, Any] | None:
    response = await complete(client, account, task)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    result: dict[str, Any] | None = response.json().get("next_occurrence")
    return result


async def series_dates(
    client: httpx.AsyncClient, account: Account, task: dict[str, Any], zone: str, count: int
) -> list[str]:
    """Complete the series `count` times: the local wall times of the occurrences."""
    dates = []
    current: dict[str, Any] | None = task
    for _ in range(count):
        assert current is not None
        dates.append(utc(current["due_date"]).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M"))
        current = await completed_next(client, account, current)
    return dates


async def test_completing_an_occurrence_creates_the_next_one_with_what_it_carries(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    category = await create_category(client, account)
    task = await create_task(
        client,
        account,
        description="Bins out",
        priority="high",
        due_date="2027-01-04T18:00:00Z",
        recurrence="rrule:freq=weekly;byday=mo",
    )
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    await assign(client, account, task["id"], category["id"])

    response = await complete(client, account, task)
    assert response.status_code == 200
    done = response.json()
    assert done["status"] == "completed"
    assert (
        response.headers["ETag"]
        == (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).headers["ETag"]
    )
    following = done["next_occurrence"]
    assert following["id"] != task["id"]
    assert following["due_date"] == "2027-01-11T18:00:00Z"
    assert following["status"] == "pending"
    assert following["completed_at"] is None
    assert following["version"] == 1
    for carried in ("title", "description", "priority", "recurrence"):
        assert following[carried] == task[carried]
    assert [c["id"] for c in following["categories"]] == [category["id"]]
    fetched = await client.get(f"{TASKS}/{following['id']}", headers=account.headers)
    assert fetched.json() == following


async def test_the_next_occurrence_of_a_subtask_stays_under_its_parent(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    parent = await create_task(client, account, title="Household")
    task = await create_task(
        client,
        account,
        parent_id=parent["id"],
        due_date="2027-01-04T18:00:00Z",
        recurrence="FREQ=WEEKLY",
    )
    following = await completed_next(client, account, task)
    assert following is not None
    assert following["parent_id"] == parent["id"]
    counted = await client.get(f"{TASKS}/{parent['id']}", headers=account.headers)
    assert counted.json()["subtask_count"] == 2
    assert counted.json()["completed_subtask_count"] == 1
    subtasks = await client.get(f"{TASKS}/{parent['id']}/subtasks", headers=account.headers)
    assert {t["id"] for t in subtasks.json()["items"]} == {task["id"], following["id"]}


async def test_a_patch_of_a_task_that_does_not_recur_answers_the_task_alone(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(client, account, due_date="2027-01-04T18:00:00Z")
    response = await complete(client, account, task)
    assert (
        response.json()
        == (await client.get(f"{TASKS}/{task['id']}", headers=account.headers)).json()
    )
    assert response.json()["recurrence"] is None


async def test_daily_at_nine_stays_at_nine_across_berlins_dst_changes(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await in_zone(client, account, "Europe/Berlin")
    task = await create_task(
        client, account, due_date=local("Europe/Berlin", 2027, 3, 27, 9, 0), recurrence="FREQ=DAILY"
    )
    dates = await series_dates(client, account, task, "Europe/Berlin", 3)
    assert dates == ["2027-03-27 09:00", "2027-03-28 09:00", "2027-03-29 09:00"]
    # The instants moved by an hour: CET (UTC+1) before, CEST (UTC+2) after.
    assert task["due_date"] == "2027-03-27T08:00:00Z"


async def test_weekly_in_new_york_keeps_its_wall_time_when_the_clocks_fall_back(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await in_zone(client, account, "America/New_York")
    task = await create_task(
        client,
        account,
        due_date=local("America/New_York", 2027, 10, 31, 8, 30),
        recurrence="FREQ=WEEKLY;BYDAY=SU",
    )
    following = await completed_next(client, account, task)
    assert following is not None
    assert task["due_date"] == "2027-10-31T12:30:00Z"  # EDT, UTC-4
    assert following["due_date"] == "2027-11-07T13:30:00Z"  # EST, UTC-5: 08:30 local again


async def test_the_31st_skips_shorter_months_and_minus_one_means_the_last_day(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    on_31st = await create_task(
        client, account, due_date="2027-01-31T10:00:00Z", recurrence="FREQ=MONTHLY"
    )
    assert await series_dates(client, account, on_31st, "UTC", 3) == [
        "2027-01-31 10:00",
        "2027-03-31 10:00",
        "2027-05-31 10:00",
    ]
    last_day = await create_task(
        client, account, due_date="2027-01-31T10:00:00Z", recurrence="FREQ=MONTHLY;BYMONTHDAY=-1"
    )
    assert await series_dates(client, account, last_day, "UTC", 3) == [
        "2027-01-31 10:00",
        "2027-02-28 10:00",
        "2027-03-31 10:00",
    ]


async def test_a_yearly_task_on_29_february_occurs_in_leap_years_only(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await create_task(
        client, account, due_date="2028-02-29T12:00:00Z", recurrence="FREQ=YEARLY"
    )
    following = await completed_next(client, account, task)
    assert following is not None
    assert following["due_date"] == "2032-02-29T12:00:00Z"


async def test_count_and_until_end_the_series(client: httpx.AsyncClient) -> None:
    account = await register(client)
    counted = await create_task(
        client, account, due_date="2027-01-01T09:00:00Z", recurrence="FREQ=DAILY;COUNT=2"
    )
    second = await completed_next(client, account, counted)
    assert second is not None
    assert await completed_next(client, account, second) is None

    until = await create_task(
        client, account, due_date="2027-01-01T09:00:00Z", recurrence="FREQ=WEEKLY;UNTIL=20270108"
    )
    second = await completed_next(client, account, until)
    assert second is not None
    assert second["due_date"] == "2027-01-08T09:00:00Z"
    assert await completed_next(client, account, second) is None


async def test_recurrence_null_stops_the_series(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await create_task(
        client, account, due_date="2027-01-01T09:00:00Z", recurrence="FREQ=DAILY"
    )
    stopped = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"recurrence": None, "version": task["version"]},
        headers=account.headers,
    )
    assert stopped.status_code == 200
    assert stopped.json()["recurrence"] is None
    assert await completed_next(client, account, stopped.json()) is None


async def test_a_new_rule_starts_a_new_series_and_the_same_rule_keeps_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    task = await create_task(
        client, account, due_date="2027-01-01T09:00:00Z", recurrence="FREQ=DAILY;COUNT=3"
    )
    moved = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"due_date": "2027-01-05T09:00:00Z", "recurrence": "freq=daily;count=3"},
        headers={**account.headers, "If-Match": "*"},
    )
    assert moved.status_code == 200
    start = await session.scalar(select(Task.recurrence_start).where(Task.id == task["id"]))
    assert start == datetime(2027, 1, 1, 9, tzinfo=UTC)  # the same rule: the series goes on

    weekly = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"recurrence": "FREQ=WEEKLY"},
        headers={**account.headers, "If-Match": "*"},
    )
    assert weekly.json()["recurrence"] == "FREQ=WEEKLY"
    start = await session.scalar(select(Task.recurrence_start).where(Task.id == task["id"]))
    assert start == datetime(2027, 1, 5, 9, tzinfo=UTC)


async def test_a_zone_change_in_the_profile_does_not_shift_a_running_series(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    await in_zone(client, account, "Europe/Berlin")
    task = await create_task(
        client, account, due_date=local("Europe/Berlin", 2027, 3, 27, 9, 0), recurrence="FREQ=DAILY"
    )
    await in_zone(client, account, "Asia/Tokyo")
    following = await completed_next(client, account, task)
    assert following is not None
    assert following["due_date"] == "2027-03-28T07:00:00Z"  # 09:00 in Berlin, still


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("FREQ=HOURLY", "FREQ=HOURLY"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "COUNT and UNTIL"),
        ("INTERVAL=2", "FREQ is required"),
        ("FREQ=WEEKLY;BYDAY=TU", "not an occurrence"),  # the due date is a Monday
        ("FREQ=DAILY;UNTIL=20261231", "UNTIL"),
    ],
)
async def test_a_bad_rule_is_a_400_naming_the_part(
    client: httpx.AsyncClient, rule: str, named: str
) -> None:
    account = await register(client)
    response = await client.post(
        TASKS,
        json={"title": "Stand-up", "due_date": "2027-01-04T09:00:00Z", "recurrence": rule},
        headers=account.headers,
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "recurrence"
    assert named in error["msg"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recurrence": "FREQ=DAILY"}, "recurrence"),  # no due date
        (
            {"recurrence": "FREQ=DAILY", "due_date": "2027-01-04T09:00:00Z", "status": "completed"},
            "recurrence",
        ),
        ({"recurrence": 7, "due_date": "2027-01-04T09:00:00Z"}, "recurrence"),
        ({"recurrence": "FREQ=DAILY;" * 30, "due_date": "2027-01-04T09:00:00Z"}, "recurrence"),
    ],
)
async def test_a_recurrence_without_due_date_or_of_the_wrong_shape_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    account = await register(client)
    response = await client.post(TASKS, json={"title": "Stand-up", **body}, headers=account.headers)
    assert response.status_code == 400, response.text
    assert field in {error["field"] for error in response.json()["errors"]}


async def test_a_recurring_task_keeps_its_due_date(client: httpx.AsyncClient) -> None:
    account = await register(client)
    task = await daily(client, account)
    response = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"due_date": None},
        headers={**account.headers, "If-Match": "*"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "due_date"
    plain = await create_task(client, account)
    attach = await client.patch(
        f"{TASKS}/{plain['id']}",
        json={"recurrence": "FREQ=DAILY"},
        headers={**account.headers, "If-Match": "*"},
    )
    assert attach.status_code == 400
    assert attach.json()["errors"][0]["field"] == "recurrence"


async def test_skipping_moves_the_task_to_its_next_occurrence_and_rearms_its_reminder(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    account = await register(client)
    task = await create_task(
        client, account, due_date="2027-01-04T09:00:00Z", recurrence="FREQ=WEEKLY;COUNT=2"
    )
    await session.execute(
        update(Task).where(Task.id == task["id"]).values(reminder_sent_at=func.now())
    )
    response = await client.post(f"{TASKS}/{task['id']}/skip", headers=account.headers)
    assert response.status_code == 200, response.text
    skipped = response.json()
    assert skipped["id"] == task["id"]
    assert skipped["status"] == "pending"
    assert skipped["due_date"] == "2027-01-11T09:00:00Z"
    assert skipped["version"] == task["version"] + 1
    assert await session.scalar(select(Task.reminder_sent_at).where(Task.id == task["id"])) is None
    ended = await client.post(f"{TASKS}/{task['id']}/skip", headers=account.headers)
    assert ended.status_code == 409
    assert ended.json()["type"].endswith("series-ended")


async def test_skip_refuses_what_it_cannot_skip(client: httpx.AsyncClient) -> None:
    account = await register(client)
    plain = await create_task(client, account, due_date="2027-01-04T09:00:00Z")
    response = await client.post(f"{TASKS}/{plain['id']}/skip", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("task-not-recurring")

    recurring = await daily(client, account)
    await complete(client, account, recurring)
    response = await client.post(f"{TASKS}/{recurring['id']}/skip", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("occurrence-not-open")

    stale = await client.post(
        f"{TASKS}/{recurring['id']}/skip", headers={**account.headers, "If-Match": '"stale"'}
    )
    assert stale.status_code == 412
    stranger = await register(client)
    response = await client.post(f"{TASKS}/{recurring['id']}/skip", headers=stranger.headers)
    assert response.status_code == 404
    response = await client.post(f"{TASKS}/not-a-uuid/skip", headers=account.headers)
    assert response.status_code == 400
    response = await client.post(f"{TASKS}/{recurring['id']}/skip")
    assert response.status_code == 401


async def test_a_retried_skip_with_an_idempotency_key_moves_the_task_once(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await daily(client, account)
    headers = {**account.headers, "Idempotency-Key": "skip-1"}
    first = await client.post(f"{TASKS}/{task['id']}/skip", headers=headers)
    again = await client.post(f"{TASKS}/{task['id']}/skip", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["due_date"] == "2027-01-05T09:00:00Z"


async def count_occurrences(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get(TASKS, params={"limit": 100}, headers=account.headers)
    return int(response.json()["total"])


async def test_a_retried_completion_with_an_idempotency_key_creates_one_next_occurrence(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await daily(client, account)
    first = await complete(client, account, task, **{"Idempotency-Key": "done-1"})
    again = await complete(client, account, task, **{"Idempotency-Key": "done-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # Without a key the repeated completion changes nothing and shows the same occurrence.
    plain = await complete(client, account, task)
    assert plain.json()["next_occurrence"]["id"] == first.json()["next_occurrence"]["id"]
    assert await count_occurrences(client, account) == 2


async def test_reopening_and_completing_again_creates_no_second_occurrence(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    task = await daily(client, account)
    following = await completed_next(client, account, task)
    reopened = await client.patch(
        f"{TASKS}/{task['id']}",
        json={"status": "pending"},
        headers={**account.headers, "If-Match": "*"},
    )
    assert reopened.json()["next_occurrence"] is None
    again = await completed_next(client, account, task)
    assert again is not None and following is not None
    assert again["id"] == following["id"]
    assert await count_occurrences(client, account) == 2


async def test_racing_completions_create_one_next_occurrence(
    live_client: httpx.AsyncClient,
) -> None:
    account = await register(live_client)
    task = await daily(live_client, account)
    responses = await asyncio.gather(*(complete(live_client, account, task) for _ in range(6)))
    assert Counter(r.status_code for r in responses) == {200: 6}
    assert len({r.json()["next_occurrence"]["id"] for r in responses}) == 1
    assert await count_occurrences(live_client, account) == 2


async def test_every_occurrence_gets_its_own_reminder(
    client: httpx.AsyncClient, session: AsyncSession, resources: Resources
) -> None:
    account = await register(client)
    await verify_address(session, account)
    task = await daily(client, account)
    (first,) = await claim(session, resources, datetime(2027, 1, 4, 8, 30, tzinfo=UTC))
    assert [str(t) for t in first.task_ids] == [task["id"]]
    following = await completed_next(client, account, task)
    assert following is not None
    (second,) = await claim(session, resources, datetime(2027, 1, 5, 8, 30, tzinfo=UTC))
    assert [str(t) for t in second.task_ids] == [following["id"]]
    assert await claim(session, resources, datetime(2027, 1, 5, 8, 45, tzinfo=UTC)) == []
    assert utc(following["due_date"]) - utc(task["due_date"]) == timedelta(days=1)
