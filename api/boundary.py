"""The API's transaction boundary: one unit of work per request, ended in one place.

A route's unit of work opens when a dependency first asks for it (reads served from the cache
or on autocommit connections never open one). `UnitOfWorkRoute` ends it after the handler
returned its response and before that response is sent: commit, then what was registered for
after the commit (jobs published, caches invalidated); on an error, roll back. A commit that
fails is an error like any other, so a request whose changes were not kept never answers 2xx.
The boundary is the route itself, not the exit of a `yield` dependency, whose timing FastAPI
has changed across versions.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api.resources import Resources
from common.db.uow import UnitOfWork

_SCOPE_KEY = "taskpipe.unit_of_work"


class UnitOfWorkRoute(APIRoute):
    """Routers whose handlers change data use this route class (`APIRouter(route_class=...)`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_unit_of_work(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException as error:
                await _end(request, error)
                raise
            await _end(request, None)
            return response

        return handle_in_unit_of_work


def resources_of(request: Request) -> Resources:
    """The process's resources (`api.resources`), set on the app at startup."""
    resources: Resources = request.app.state.resources
    return resources


def open_unit_of_work(request: Request) -> UnitOfWork:
    """The request's unit of work, opened on first use; `UnitOfWorkRoute` ends it."""
    uow: UnitOfWork | None = request.scope.get(_SCOPE_KEY)
    if uow is None:
        uow = request.scope[_SCOPE_KEY] = resources_of(request).unit_of_work()
    return uow


async def _end(request: Request, error: BaseException | None) -> None:
    uow: UnitOfWork | None = request.scope.pop(_SCOPE_KEY, None)
    if uow is not None:
        await uow.end(error)
