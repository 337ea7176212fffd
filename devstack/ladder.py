"""The ladder each service climbs: found, the machine's own server started, or embedded.

`check` climbs it with `start=False`: it says which rung `run` would take and starts nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from devstack.embedded import EmbeddedServer
from devstack.support import DevstackError, Embedded, Endpoint, Origin, Service, log, why_embedded


@dataclass(frozen=True)
class LocalServer:
    """The machine's own server for an endpoint, installed but not running."""

    description: str  # what `check` says would be started
    start: Callable[[list[str]], str | None]  # what was started, or None (and why, in tried)


@dataclass(frozen=True)
class Rungs:
    """One service's ladder: where the settings point, and the two ways to provide it."""

    name: str  # "PostgreSQL", "Redis"
    variable: str  # the setting to point elsewhere
    url: str
    shown: str  # the URL without its password
    endpoint: Endpoint
    local_server: Callable[[list[str]], LocalServer | None]
    embedded_server: Callable[[], EmbeddedServer]
    embedded_url: Callable[[int | None], tuple[str, str]]  # port -> url, shown (None: not yet)


def climb(
    rungs: Rungs, embedded: Embedded, stack: contextlib.ExitStack, *, start: bool = True
) -> Service:
    name, shown, endpoint = rungs.name, rungs.shown, rungs.endpoint
    tried: list[str] = []
    if embedded is not Embedded.ALWAYS:
        if endpoint.reachable():
            log(f"using {name} at {shown} (it answers)")
            return Service(name, rungs.url, shown, Origin.FOUND, f"{endpoint} answers")
        tried.append(f"no {name} answers at {endpoint}")
        if not endpoint.is_local:
            tried.append("the host is not local, so no server was started there")
        elif endpoint.taken():
            tried.append(f"something that is not {name} listens on {endpoint}")
        elif (local := rungs.local_server(tried)) is not None:
            if not start:
                detail = f"run would start {local.description}"
                return Service(name, rungs.url, shown, Origin.TO_START, detail)
            if (started := local.start(tried)) is not None:
                log(f"using {name} at {shown} ({started})")
                return Service(name, rungs.url, shown, Origin.STARTED, started)
    if embedded is Embedded.NEVER:
        raise DevstackError(
            f"no {name} for {shown}: {'; '.join(tried)}; embedded servers are off "
            f"(--embedded never). Start {name} there, point {rungs.variable} at one that runs, "
            "or use --embedded auto."
        )
    try:
        server = rungs.embedded_server()
        if start:
            port, how = server.acquire(stack)
        else:
            port, how = server.running_port() or 0, "using the running"
    except DevstackError as exc:
        tried.append(f"embedded {name}: {exc}")
        raise DevstackError(
            f"no {name} for {shown}: {'; '.join(tried)}. Start {name} and set {rungs.variable} "
            "to it."
        ) from exc
    if not port:  # check, and nothing embedded runs yet
        _, placeholder = rungs.embedded_url(None)
        detail = f"run would embed {name}, files in {server.root}"
        return Service(name, "", placeholder, Origin.TO_EMBED, detail)
    url, embedded_shown = rungs.embedded_url(port)
    reason = why_embedded(name, endpoint, embedded, tried)
    log(f"{reason}; {how} embedded {name} at {embedded_shown} (files in {server.root})")
    return Service(name, url, embedded_shown, Origin.EMBEDDED, f"embedded, files in {server.root}")
