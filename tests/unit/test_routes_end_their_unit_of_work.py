"""Every route that opens a unit of work ends it: no write can be left uncommitted."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

import api.routers
from api.boundary import UnitOfWorkRoute, open_unit_of_work

ROUTERS = tuple(
    importlib.import_module(f"api.routers.{module.name}").router
    for module in pkgutil.iter_modules(api.routers.__path__)
)
"""Every router module's router, so a new one cannot be left out."""


def _calls(dependant: Any) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _opens_unit_of_work(call: object) -> bool:
    """A dependency that calls `api.boundary.open_unit_of_work` (`get_uow` or a service's)."""
    code = getattr(call, "__code__", None)
    return code is not None and open_unit_of_work.__name__ in code.co_names


def test_routes_that_use_the_unit_of_work_are_unit_of_work_routes() -> None:
    using = [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and any(map(_opens_unit_of_work, _calls(route.dependant)))
    ]
    assert len(using) >= 30  # auth, users, sessions, tokens, exports, tasks, categories
    assert [r.path for r in using if not isinstance(r, UnitOfWorkRoute)] == []
