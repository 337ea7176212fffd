"""What a person finds at the API's own address: `/` pointing onward, and the docs pages.

FastAPI's `/docs` and `/redoc` load Swagger UI and ReDoc from a CDN: blank without the internet,
and a third party on every visit. Here the pages load the same files from the app itself, taken
from the `fastapi-offline` package (Swagger UI's bundle and CSS, ReDoc's standalone script).
The pages stay where, and whether, the app put them: a docs URL turned off stays off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

ASSETS_URL = "/docs-assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve the docs pages without a CDN, and answer `/` with where to go from there."""
    pages = _offline_pages(app)
    if pages:
        # FastAPI added its CDN pages as plain routes at these paths: ours take their place
        app.router.routes[:] = [
            route
            for route in app.router.routes
            if type(route) is not Route or route.path not in pages
        ]
        app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
        for path, page in pages.items():
            app.add_route(path, page, include_in_schema=False)

    async def index(request: Request) -> JSONResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        links = {"health": f"{root}/health", "ready": f"{root}/ready", "api": f"{root}/api/v1"}
        if app.openapi_url and app.docs_url:
            links = {"docs": f"{root}{app.docs_url}", **links}
        return JSONResponse({"name": app.title, "version": app.version, **links})

    app.add_route("/", index, include_in_schema=False)


Page = Callable[[Request], Awaitable[Response]]


def _offline_pages(app: FastAPI) -> dict[str, Page]:
    if not app.openapi_url:
        return {}
    openapi_url = app.openapi_url
    pages: dict[str, Page] = {}

    if app.docs_url:

        async def swagger_ui(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            redirect = app.swagger_ui_oauth2_redirect_url
            return get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=f"{root}{redirect}" if redirect else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

        pages[app.docs_url] = swagger_ui

    if app.redoc_url:

        async def redoc(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )

        pages[app.redoc_url] = redoc
    return pages
