"""Taskpipe under load: people using a task app, every request named by its route template.

    make loadtest                                   (everything: platform, seed, run, report)
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 -u 100 -r 10 -t 2m --headless

Three kinds of simulated user share the same behaviour code with different mixes:

* `Reader` (3 of 4 users): opens the app, looks at lists (filters, sorts, search, next pages),
  opens tasks (with `If-None-Match`, so unchanged ones cost a 304), ticks tasks off.
* `Planner` (1 of 4): the same reads, plus creating, editing (with the right `version`, or an
  `If-Match` ETag), completing, deleting, labelling tasks with categories, and now and then a
  deliberate edit from a stale copy (another device) that must answer 409 (body version) or 412
  (If-Match): those conflicts are expected and count as successes.
* `Syncer` (1 in 5): a mobile or desktop app that keeps a copy: a full sync of the change feed
  when it opens (`GET /sync` along `next_cursor`), then polls it with its cursor (mostly
  "nothing new", a cache hit), writes now and then (edits, completions, deletions, a batch
  of new tasks) and checks that the feed brings back every change it made (a 410 starts a
  full sync again).

Both resume the session the seed opened for their account (`POST /auth/refresh`, no password
hash), as real clients holding a refresh token do; a few sign in with their password instead,
and a small steady share signs out and in again during the run, so the password hash's cost is
in the mix at a realistic rate, not as a stampede. Every answer is checked (status, shape, and
that filters and versions hold), so a wrong answer is a failure, not a success.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import orjson
from locust import FastHttpUser, between, events, tag
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from loadtests import env, routes
from loadtests.accounts import Account, credentials_path, read_accounts
from loadtests.checks import (
    PRIORITIES,
    categories_problem,
    category_ids,
    conditional_problem,
    conflict_version,
    page_problem,
    sync_problem,
    task_problem,
    task_reply_problem,
    token_problem,
)
from loadtests.content import SEARCH_TERMS, task_description, task_title
from loadtests.shapes import selected_shape

# --- the knobs --------------------------------------------------------------------------------

THINK_TIME_SECONDS = env.think_time((1.0, 5.0))
"""Pause between two actions of one user, uniform: 3 s on average, so 1000 users make ~330
actions/s. People in a task app act every 10-30 s; this is a busy user, harsher than life.
`TASKPIPE_LOADTEST_THINK=2,8` overrides it without editing this file."""

READER_WEIGHT = 3
PLANNER_WEIGHT = 1
SYNCER_WEIGHT = 1
"""Share of each kind of user: most people mostly read their lists; one in five uses an app
that syncs."""

READER_ACTIONS = {
    "list_tasks": 480,
    "view_task": 330,
    "list_categories": 80,
    "view_profile": 40,
    "complete_task": 60,
    "refresh_session": 8,
    "sign_in_again": 2,
}
"""What a reader does next, in 1000ths: 93 % reads."""

PLANNER_ACTIONS = {
    "list_tasks": 280,
    "view_task": 170,
    "list_categories": 30,
    "create_task": 140,
    "update_task": 140,
    "complete_task": 70,
    "delete_task": 60,
    "assign_category": 50,
    "unassign_category": 25,
    "edit_stale_copy": 25,
    "refresh_session": 8,
    "sign_in_again": 2,
}
"""What a planner does next, in 1000ths: 48 % reads, 51 % writes. Over both kinds ~82 % of the
actions read; logins are 0.2 % (~0.7/s at 1000 users, ~20 ms of Argon2id CPU per second)."""

SYNCER_ACTIONS = {
    "poll_changes": 700,
    "complete_task": 80,
    "update_task": 80,
    "create_tasks_batch": 60,
    "delete_task": 40,
    "list_categories": 30,
    "refresh_session": 8,
    "sign_in_again": 2,
}
"""What a syncing app does next, in 1000ths: mostly polls the change feed, 26 % writes."""

SYNC_PAGE_SIZE = 100
MAX_SYNC_PAGES = 50
"""A full sync of a seeded account (200 tasks) takes 3 pages; this bounds a runaway one."""
BATCH_SIZES = (2, 5)

LIST_VARIANTS = {
    "first_page": 40,
    "next_pages": 10,
    "open_by_due_date": 15,
    "high_priority_newest": 10,
    "by_priority_50": 8,
    "due_this_week": 7,
    "search": 5,
    "by_category": 5,
}
"""Which list a user looks at, in %: mostly the default first page, which clients poll with
`If-None-Match` (the cache and 304s carry it), then filtered and sorted views."""

SIGN_IN_ON_START_SHARE = 0.05
"""Share of users who start with a password login rather than resuming a stored session."""

ON_SCREEN_SHARE = 0.8
"""Share of task views and edits that pick a task from the list page last seen (what is on
the screen); the rest pick any task this client has seen during the run."""

UPDATE_WITH_IF_MATCH_SHARE = 0.3
"""Share of edits that send the ETag in `If-Match` instead of `version` in the body."""

REFRESH_MARGIN_SECONDS = 60
NETWORK_TIMEOUT_SECONDS = 30.0

Check = Callable[[int, Any], "str | None"]
log = logging.getLogger("taskpipe.loadtest")

# --- accounts and the per-process request log -----------------------------------------------


class AccountPool:
    """Hands each simulated user its own account; with several Locust processes each takes
    every n-th account, so no two users share one (shared accounts would conflict on edits)."""

    def __init__(self) -> None:
        self._accounts: list[Account] | None = None
        self._claimed = itertools.count()
        self._warned = False

    def load(self, path: Path) -> None:
        self._accounts = read_accounts(path)
        if not self._accounts:
            raise SystemExit(f"{path} holds no accounts; run python -m loadtests.seed")

    def claim(self, environment: Environment) -> tuple[Account, bool]:
        """An account, and whether its stored session is still unused (safe to resume)."""
        if self._accounts is None:
            self.load(credentials_path())
        assert self._accounts is not None
        offset, stride = _slice_of(environment)
        index = offset + stride * next(self._claimed)
        if index >= len(self._accounts) and not self._warned:
            self._warned = True
            log.warning(
                "more users than seeded accounts (%d): accounts are shared from now on, "
                "seed more with python -m loadtests.seed --users N",
                len(self._accounts),
            )
        return self._accounts[index % len(self._accounts)], index < len(self._accounts)


def _slice_of(environment: Environment) -> tuple[int, int]:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        options = environment.parsed_options
        workers = getattr(options, "processes", None) or int(os.environ.get(env.WORKERS) or 1)
        return runner.worker_index, max(workers, 1)
    return 0, 1


ACCOUNTS = AccountPool()


class RequestLog:
    """One CSV row per request (start time, method, route, ms, ok) for exact window maths."""

    def __init__(self) -> None:
        self._handle: TextIO | None = None

    def open(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._handle = (directory / f"requests-{os.getpid()}.csv").open("w", buffering=1 << 20)
        self._handle.write("start,method,name,response_ms,ok\n")

    def record(
        self,
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        if self._handle is not None:
            started = start_time if start_time is not None else time.time() - response_time / 1000
            ok = 0 if exception else 1
            self._handle.write(f"{started:.3f},{request_type},{name},{response_time:.2f},{ok}\n")

    def flush(self, **_: Any) -> None:
        if self._handle is not None:
            self._handle.flush()


REQUEST_LOG = RequestLog()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return  # the master runs no users
    path = credentials_path()
    if not path.exists():
        raise SystemExit(f"no credentials file at {path}: run python -m loadtests.seed first")
    ACCOUNTS.load(path)
    directory = os.environ.get(env.REQUEST_LOG)
    if directory:
        REQUEST_LOG.open(Path(directory))
        environment.events.request.add_listener(REQUEST_LOG.record)
        environment.events.test_stop.add_listener(REQUEST_LOG.flush)
        environment.events.quitting.add_listener(REQUEST_LOG.flush)


LoadShape = selected_shape()
"""None for a plain run; the spike or soak shape when TASKPIPE_LOADTEST_SHAPE names one."""

# --- the users --------------------------------------------------------------------------------


@dataclass
class KnownTask:
    """What this client last saw of one of its tasks."""

    version: int
    status: str
    title: str
    priority: str
    categories: set[str]
    etag: str | None = None


@dataclass
class Reply:
    status: int
    body: Any
    etag: str | None


@dataclass
class Session:
    access_token: str = ""
    refresh_token: str = ""
    renew_at: float = 0.0
    ended: bool = False  # a 401: the app shows its sign-in screen, the person signs in again


@dataclass
class ClientState:
    tasks: dict[str, KnownTask] = field(default_factory=dict)
    list_etags: dict[str, str] = field(default_factory=dict)  # query -> ETag
    list_pages: dict[str, list[str]] = field(default_factory=dict)  # query -> task ids
    on_screen: list[str] = field(default_factory=list)  # the last list page seen
    categories: list[str] = field(default_factory=list)


class TaskAppUser(FastHttpUser):
    """Shared behaviour; `Reader` and `Planner` only pick a different mix of these actions."""

    abstract = True
    wait_time = between(*THINK_TIME_SECONDS)
    network_timeout = NETWORK_TIMEOUT_SECONDS
    connection_timeout = NETWORK_TIMEOUT_SECONDS

    def on_start(self) -> None:
        self.account, fresh = ACCOUNTS.claim(self.environment)
        self.session = Session()
        self.state = ClientState()
        resumed = (
            fresh
            and self.account.refresh_token is not None
            and random.random() >= SIGN_IN_ON_START_SHARE
            and self._refresh(self.account.refresh_token)
        )
        if not resumed and not self._login():
            raise StopUser  # failure already recorded; a user without a session can do nothing
        if _reads_enabled(self.environment):
            self.open_app()

    def open_app(self) -> None:
        """The home screen: labels and the first page of tasks."""
        self.list_categories()
        self._list({})

    def _wrote(self, task_id: str, version: int | None) -> None:
        """This client changed the task (to `version`; None: deleted it)."""

    # -- HTTP -------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        template: str,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
        check: Check | None = None,
        authenticated: bool = True,
    ) -> Reply | None:
        """Send one request named by its route template; None when it failed its checks."""
        if (method, template) not in routes.ENDPOINTS:
            raise ValueError(f"{method} {template} is not in loadtests.routes.ENDPOINTS")
        url = template.format(**path) if path else template
        if query:
            url = f"{url}?{urlencode(query)}"
        sent = dict(headers or {})
        if authenticated:
            self._renew_if_due()
            sent["Authorization"] = f"Bearer {self.session.access_token}"
        data = None
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        with self.client.request(
            method, url, name=template, data=data, headers=sent, catch_response=True
        ) as response:
            status = response.status_code
            parsed = None
            if response.content and status not in (204, 304):
                try:
                    parsed = orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    response.failure(f"{status}: the body is not JSON")
                    return None
            if status not in expect:
                response.failure(_unexpected(status, expect, parsed, response.error))
                if status == 401 and authenticated:
                    self.session.ended = True
                return None
            etag = response.headers.get("etag") if response.headers else None
            problem = conditional_problem(status, sent.get("If-None-Match"), etag)
            problem = problem or (check(status, parsed) if check else None)
            if problem:
                response.failure(problem)
                return None
            response.success()
            return Reply(status, parsed, etag)

    # -- session ----------------------------------------------------------------------------

    def _adopt(self, pair: dict[str, Any]) -> None:
        self.session.ended = False
        self.session.access_token = pair["access_token"]
        self.session.refresh_token = pair["refresh_token"]
        lifetime = max(pair["expires_in"] - REFRESH_MARGIN_SECONDS, 1)
        self.session.renew_at = time.monotonic() + lifetime

    def _refresh(self, refresh_token: str) -> bool:
        reply = self.call(
            "POST",
            routes.REFRESH,
            body={"refresh_token": refresh_token},
            check=lambda _, body: token_problem(body),
            authenticated=False,
        )
        if reply is not None:
            self._adopt(reply.body)
        return reply is not None

    def _login(self) -> bool:
        reply = self.call(
            "POST",
            routes.LOGIN,
            body={"email": self.account.email, "password": self.account.password},
            check=lambda _, body: token_problem(body),
            authenticated=False,
        )
        if reply is not None:
            self._adopt(reply.body)
        return reply is not None

    def _renew_if_due(self) -> None:
        if self.session.ended:
            # e.g. a refresh that timed out here but rotated the token on the server: the
            # next refresh was a reuse and ended the session. A person signs in again.
            self.session.ended = False
            self._login()
            return
        if self.session.renew_at and time.monotonic() >= self.session.renew_at:
            self.session.renew_at = 0.0  # no recursion through call()
            if not self._refresh(self.session.refresh_token):
                self._login()

    @tag("auth")
    def refresh_session(self) -> None:
        """The client's access token is about to expire: trade the refresh token."""
        if not self._refresh(self.session.refresh_token):
            self._login()

    @tag("auth")
    def sign_in_again(self) -> None:
        """Sign out, then in with the password: the path that pays the password hash."""
        self.call(
            "POST",
            routes.LOGOUT,
            body={"refresh_token": self.session.refresh_token},
            expect=(204,),
            authenticated=False,
        )
        self._login()

    # -- reads ------------------------------------------------------------------------------

    @tag("read")
    def list_tasks(self) -> None:
        variant = random.choices(list(LIST_VARIANTS), list(LIST_VARIANTS.values()))[0]
        self._list(self._list_query(variant))

    def _list_query(self, variant: str) -> dict[str, Any]:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if variant == "next_pages":
            return {"page": random.randint(2, 3)}
        if variant == "open_by_due_date":
            return {"status": "pending,in_progress", "sort": "due_date"}
        if variant == "high_priority_newest":
            return {"priority": "high", "sort": "-created_at"}
        if variant == "by_priority_50":
            return {"sort": "-priority,due_date", "limit": 50}
        if variant == "due_this_week":
            return {
                "due_from": today.isoformat(),
                "due_to": (today + timedelta(days=7)).isoformat(),
                "sort": "due_date",
            }
        if variant == "search":
            return {"q": random.choice(SEARCH_TERMS)}
        if variant == "by_category" and self.state.categories:
            return {"category_id": random.choice(self.state.categories)}
        return {}

    def _list(self, query: dict[str, Any]) -> None:
        key = urlencode(query)
        etag = self.state.list_etags.get(key)
        reply = self.call(
            "GET",
            routes.TASKS,
            query=query,
            headers={"If-None-Match": etag} if etag else None,
            expect=(200, 304) if etag else (200,),
            check=lambda status, body: page_problem(body, query) if status == 200 else None,
        )
        if reply is None:
            return
        if reply.status == 304:
            self.state.on_screen = self.state.list_pages.get(key, [])
            return
        if reply.etag:
            self.state.list_etags[key] = reply.etag
        for item in reply.body["items"]:
            self._remember(item)
        self.state.on_screen = self.state.list_pages[key] = [i["id"] for i in reply.body["items"]]

    @tag("read")
    def view_task(self) -> None:
        task_id = self._pick_task()
        if task_id is None:
            return
        known = self.state.tasks[task_id]
        self._get_task(task_id, if_none_match=known.etag)

    def _get_task(self, task_id: str, *, if_none_match: str | None = None) -> dict[str, Any] | None:
        known = self.state.tasks.get(task_id)
        reply = self.call(
            "GET",
            routes.TASK,
            path={"task_id": task_id},
            headers={"If-None-Match": if_none_match} if if_none_match else None,
            expect=(200, 304) if if_none_match else (200,),
            check=lambda status, body: (
                task_reply_problem(body, task_id, known.version if known else None)
                if status == 200
                else None
            ),
        )
        if reply is None:
            self.state.tasks.pop(task_id, None)  # unsure what the server holds now
            return None
        if reply.status == 304:
            return None
        self._remember(reply.body, reply.etag)
        return dict(reply.body)

    @tag("read")
    def list_categories(self) -> None:
        reply = self.call("GET", routes.CATEGORIES, check=lambda _, body: categories_problem(body))
        if reply is not None:
            self.state.categories = [category["id"] for category in reply.body["items"]]

    @tag("read")
    def view_profile(self) -> None:
        email = self.account.email

        def check(_: int, body: Any) -> str | None:
            if not isinstance(body, dict) or body.get("email") != email:
                return "the profile is not the caller's"
            return None

        self.call("GET", routes.ME, check=check)

    # -- writes -----------------------------------------------------------------------------

    @tag("write")
    def create_task(self) -> None:
        body: dict[str, Any] = {
            "title": task_title(),
            "priority": random.choice(PRIORITIES),
        }
        if random.random() < 0.6:
            body["due_date"] = _future(days=random.uniform(1, 30))
        description = task_description()
        if description:
            body["description"] = description

        def check(_: int, task: Any) -> str | None:
            problem = task_problem(task)
            if problem:
                return problem
            if task["title"] != body["title"] or task["version"] != 1:
                return "the created task differs from the request"
            if task["status"] != "pending" or task["categories"]:
                return "a new task is not pending without categories"
            return None

        reply = self.call(
            "POST",
            routes.TASKS,
            body=body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            expect=(201,),
            check=check,
        )
        if reply is not None:
            self._remember(reply.body, reply.etag)
            self._wrote(reply.body["id"], 1)

    @tag("write")
    def update_task(self) -> None:
        task_id = self._pick_task()
        if task_id is None:
            return
        known = self.state.tasks[task_id]
        field_name = random.choice(("title", "priority", "description", "due_date"))
        value: str
        if field_name == "title":
            value = _other_title(known.title)
        elif field_name == "priority":
            value = _other_priority(known.priority)
        elif field_name == "description":
            value = f"{task_description() or 'Details'} ({uuid.uuid4().hex[:6]})"
        else:
            value = _future(days=random.uniform(1, 30))
        self._patch(task_id, {field_name: value})

    @tag("write")
    def complete_task(self) -> None:
        open_tasks = [
            task_id
            for task_id, known in self.state.tasks.items()
            if known.status in ("pending", "in_progress")
        ]
        if not open_tasks:
            self.list_tasks()
            return
        self._patch(random.choice(open_tasks), {"status": "completed"})

    def _patch(self, task_id: str, change: dict[str, Any]) -> dict[str, Any] | None:
        """PATCH with the version this client holds (or its ETag as If-Match): must succeed."""
        known = self.state.tasks[task_id]
        headers = None
        body = dict(change)
        if known.etag and random.random() < UPDATE_WITH_IF_MATCH_SHARE:
            headers = {"If-Match": known.etag}
        else:
            body["version"] = known.version

        def check(_: int, task: Any) -> str | None:
            problem = task_problem(task)
            if problem:
                return problem
            if task["id"] != task_id or task["version"] != known.version + 1:
                return "a successful PATCH did not bump the version by one"
            if any(task[name] != value for name, value in change.items() if name != "due_date"):
                return "the PATCH response does not show the change"
            return None

        reply = self.call(
            "PATCH", routes.TASK, path={"task_id": task_id}, body=body, headers=headers, check=check
        )
        if reply is None:
            self.state.tasks.pop(task_id, None)
            return None
        self._remember(reply.body, reply.etag)
        self._wrote(task_id, reply.body["version"])
        return dict(reply.body)

    @tag("write")
    def edit_stale_copy(self) -> None:
        """Edit a task, then send an edit from the copy held before it: a second device that
        missed the change. The stale edit must be refused (409 with the current version, or
        412 for a stale If-Match) and is counted as a success when it is."""
        task_id = self._pick_task()
        if task_id is None:
            return
        stale = self.state.tasks[task_id]
        stale_version, stale_etag = stale.version, stale.etag
        updated = self._patch(task_id, {"priority": _other_priority(stale.priority)})
        if updated is None:
            return
        current = updated["version"]
        if stale_etag and random.random() < 0.5:
            self.call(
                "PATCH",
                routes.TASK,
                path={"task_id": task_id},
                body={"title": _other_title(updated["title"])},
                headers={"If-Match": stale_etag},
                expect=(412,),
            )
            return

        def check(_: int, body: Any) -> str | None:
            if conflict_version(body) != current:
                return "a 409 does not carry the current version"
            return None

        self.call(
            "PATCH",
            routes.TASK,
            path={"task_id": task_id},
            body={"title": _other_title(updated["title"]), "version": stale_version},
            expect=(409,),
            check=check,
        )

    @tag("write")
    def delete_task(self) -> None:
        task_id = self._pick_task()
        if task_id is None:
            return
        self.state.tasks.pop(task_id)
        if self.call("DELETE", routes.TASK, path={"task_id": task_id}, expect=(204,)):
            self._wrote(task_id, None)

    @tag("write")
    def assign_category(self) -> None:
        task_id = self._pick_task()
        if task_id is None or not self.state.categories:
            return
        known = self.state.tasks[task_id]
        free = [cat for cat in self.state.categories if cat not in known.categories]
        if not free:
            self.unassign_category()
            return
        cat_id = random.choice(free)

        def check(_: int, task: Any) -> str | None:
            problem = task_problem(task)
            if problem:
                return problem
            if cat_id not in category_ids(task):
                return "the assigned category is not on the task"
            return None

        reply = self.call(
            "POST",
            routes.TASK_CATEGORY,
            path={"task_id": task_id, "category_id": cat_id},
            check=check,
        )
        if reply is None:
            self.state.tasks.pop(task_id, None)
        else:
            self._remember(reply.body, reply.etag)

    @tag("write")
    def unassign_category(self) -> None:
        labelled = [task_id for task_id, known in self.state.tasks.items() if known.categories]
        if not labelled:
            return
        task_id = random.choice(labelled)
        cat_id = random.choice(sorted(self.state.tasks[task_id].categories))
        reply = self.call(
            "DELETE",
            routes.TASK_CATEGORY,
            path={"task_id": task_id, "category_id": cat_id},
            expect=(204,),
        )
        self.state.tasks.pop(task_id, None)  # its version moved on; the client reloads it
        if reply is None:
            return
        task = self._get_task(task_id)
        if task is not None and cat_id in category_ids(task):
            log.error("category %s still on task %s after removal", cat_id, task_id)

    # -- state ------------------------------------------------------------------------------

    def _pick_task(self) -> str | None:
        """A task from the list on screen (people open what they are looking at), now and
        then one seen earlier."""
        if not self.state.tasks:
            self._list({})
        on_screen = [task_id for task_id in self.state.on_screen if task_id in self.state.tasks]
        if on_screen and random.random() < ON_SCREEN_SHARE:
            return random.choice(on_screen)
        if not self.state.tasks:
            return None
        return random.choice(list(self.state.tasks))

    def _remember(self, task: dict[str, Any], etag: str | None = None) -> None:
        previous = self.state.tasks.get(task["id"])
        if etag is None and previous is not None and previous.version == task["version"]:
            etag = previous.etag
        self.state.tasks[task["id"]] = KnownTask(
            task["version"],
            task["status"],
            task["title"],
            task["priority"],
            category_ids(task),
            etag,
        )


class SyncingApp(TaskAppUser):
    """An app that keeps a copy of the account and syncs it through the change feed."""

    abstract = True

    def on_start(self) -> None:
        self.cursor: str | None = None
        self.last_seq = 0
        self.unconfirmed: dict[str, int | None] = {}  # own writes the feed has not shown yet
        super().on_start()

    def open_app(self) -> None:
        self.poll_changes()

    def _wrote(self, task_id: str, version: int | None) -> None:
        self.unconfirmed[task_id] = version

    @tag("read")
    def poll_changes(self) -> None:
        """Follow the feed from the cursor until it has nothing more; a 410 starts over from
        the beginning (a full sync), as a real app must."""
        for _ in range(MAX_SYNC_PAGES):
            query: dict[str, Any] = {"limit": SYNC_PAGE_SIZE}
            if self.cursor is not None:
                query["since"] = self.cursor
            reply = self.call(
                "GET", routes.SYNC, query=query, expect=(200, 410), check=self._check_changes
            )
            if reply is None:
                return
            if reply.status == 410:
                self.cursor, self.last_seq = None, 0
                self.state.tasks.clear()
                continue
            for change in reply.body["changes"]:
                self._apply(change)
            self.cursor = reply.body["next_cursor"]
            if not reply.body["has_more"]:
                return

    def _check_changes(self, status: int, body: Any) -> str | None:
        if status != 200:
            return None
        problem = sync_problem(body, self.last_seq)
        if problem or body["has_more"]:
            return problem
        seen = {change["id"]: change for change in body["changes"]}
        for task_id, version in self.unconfirmed.items():
            change = seen.get(task_id)
            if change is None:
                return "the feed missed a change this client made"
            if change["op"] == "upsert" and (
                version is None or change["data"]["version"] < version
            ):
                return "the feed shows a task older than this client's own write"
        return None

    def _apply(self, change: dict[str, Any]) -> None:
        self.last_seq = change["seq"]
        task_id = change["id"]
        self.unconfirmed.pop(task_id, None)
        if change["kind"] == "category":
            if change["op"] == "delete" and task_id in self.state.categories:
                self.state.categories.remove(task_id)
            elif change["op"] == "upsert" and task_id not in self.state.categories:
                self.state.categories.append(task_id)
        elif change["op"] == "delete":
            self.state.tasks.pop(task_id, None)
        else:
            self._remember(change["data"])

    @tag("write")
    def create_tasks_batch(self) -> None:
        items = [
            {"title": task_title(), "priority": random.choice(PRIORITIES)}
            for _ in range(random.randint(*BATCH_SIZES))
        ]

        def check(_: int, body: Any) -> str | None:
            created = body.get("items") if isinstance(body, dict) else None
            if not isinstance(created, list) or len(created) != len(items):
                return "a batch answer does not list every new task"
            for task, item in zip(created, items, strict=True):
                problem = task_problem(task)
                if problem:
                    return problem
                if task["title"] != item["title"] or task["version"] != 1:
                    return "a batch answer differs from its items"
            return None

        reply = self.call(
            "POST",
            routes.TASKS_BATCH,
            body={"items": items},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            expect=(201,),
            check=check,
        )
        if reply is not None:
            for task in reply.body["items"]:
                self._remember(task)
                self._wrote(task["id"], 1)


def _reads_enabled(environment: Environment) -> bool:
    """False when `--tags`/`--exclude-tags` leave the "read" actions out (e.g. `--tags auth`)."""
    options = environment.parsed_options
    tags = getattr(options, "tags", None)
    excluded = getattr(options, "exclude_tags", None)
    return (not tags or "read" in tags) and not (excluded and "read" in excluded)


def _other_title(current: str) -> str:
    """A title that differs from `current` (an unchanged value would change nothing)."""
    while (title := task_title()) == current:
        pass
    return title


def _other_priority(current: str) -> str:
    return random.choice([priority for priority in PRIORITIES if priority != current])


def _future(*, days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat(timespec="seconds")


def _unexpected(status: int, expect: tuple[int, ...], body: Any, error: Any) -> str:
    """A failure message that groups well: no ids, no request ids."""
    wanted = "/".join(map(str, expect))
    if status == 0:
        return f"expected {wanted}, got no response ({type(error).__name__})"
    title = body.get("title") if isinstance(body, dict) else None
    return f"expected {wanted}, got {status}" + (f" ({title})" if title else "")


def _mix(
    actions: dict[str, int], behaviour: type[TaskAppUser] = TaskAppUser
) -> dict[Callable[..., Any], int]:
    return {getattr(behaviour, name): weight for name, weight in actions.items()}


class Reader(TaskAppUser):
    weight = READER_WEIGHT
    tasks = _mix(READER_ACTIONS)


class Planner(TaskAppUser):
    weight = PLANNER_WEIGHT
    tasks = _mix(PLANNER_ACTIONS)


class Syncer(SyncingApp):
    weight = SYNCER_WEIGHT
    tasks = _mix(SYNCER_ACTIONS, SyncingApp)
