"""The API routes the scenario calls, by their OpenAPI path templates.

Every request the locustfile sends is named by one of these templates (so Locust groups
`/api/v1/tasks/3f2a...` and `/api/v1/tasks/9b1c...` under one row), and its URL is built by
formatting the same template, so the name can never drift from the URL.
`tests/loadtests/test_locustfile.py` checks each (method, template) against the app's OpenAPI.
This module imports nothing from Locust (importing Locust monkey-patches the process with gevent).
"""

from __future__ import annotations

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
TASKS = "/api/v1/tasks"
TASK = "/api/v1/tasks/{task_id}"
TASK_CATEGORY = "/api/v1/tasks/{task_id}/categories/{category_id}"
CATEGORIES = "/api/v1/categories"
TASKS_BATCH = "/api/v1/tasks/batch"
SYNC = "/api/v1/sync"

ENDPOINTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", LOGIN),
        ("POST", REFRESH),
        ("POST", LOGOUT),
        ("GET", ME),
        ("GET", TASKS),
        ("POST", TASKS),
        ("GET", TASK),
        ("PATCH", TASK),
        ("DELETE", TASK),
        ("POST", TASK_CATEGORY),
        ("DELETE", TASK_CATEGORY),
        ("GET", CATEGORIES),
        ("POST", TASKS_BATCH),
        ("GET", SYNC),
    }
)
"""Every (method, template) the scenario may send; the locustfile refuses anything else."""
