"""structlog set-up shared by the API and the worker: lines carrying the request id, as JSON for
machines or readable console lines for a person at a terminal."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import TextIO

import orjson
import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_REDACTED_KEYS = frozenset(
    {"password", "new_password", "token", "access_token", "refresh_token", "authorization"}
)


def _add_request_id(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _redact_secrets(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key in _REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


_SERVER_DETAIL = re.compile(r"DETAIL:.*?(?=\\n|\n|$)")
"""To the end of its line, whether the line ends in a newline or in an escaped one (a repr)."""


def _drop_server_details(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """PostgreSQL's DETAIL repeats the values of the row at fault ("Key (email)=(...) already
    exists"), and asyncpg puts it in the error's text: a logged database error keeps its
    message, constraint and statement (whose values `hide_parameters` already hides) and loses
    that line, wherever it appears (a traceback, an `error=repr(exc)`)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "DETAIL:" in value:
            event_dict[key] = _SERVER_DETAIL.sub("DETAIL:  [hidden]", value)
    return event_dict


_CAUSES_SEARCHED = 4


def _name_database_error(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """A logged database error names its SQLSTATE and constraint as fields of their own: with
    its class and message (less the DETAIL, `_drop_server_details`), what it takes to find the
    cause. Lines without an exception pay one lookup."""
    exc_info = event_dict.get("exc_info")
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    # SQLAlchemy's error wraps the driver's, which carries both (asyncpg: `constraint_name`);
    # a few links deep at most, so a cycle of causes cannot hold a log call.
    for _ in range(_CAUSES_SEARCHED):
        if not isinstance(error, BaseException):
            break
        if (sqlstate := getattr(error, "sqlstate", None)) is not None:
            event_dict.setdefault("sqlstate", sqlstate)
        if (constraint := getattr(error, "constraint_name", None)) is not None:
            event_dict.setdefault("constraint", constraint)
        error = error.__cause__
    return event_dict


def _orjson_dumps(event_dict: object, **_: object) -> str:
    """One log line per request: orjson renders it several times faster than `json`."""
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Route structlog and the stdlib (uvicorn, celery, sqlalchemy) through one renderer.

    Lines go to `stream` (stdout unless a command keeps stdout for its answer). `json=None`
    decides by where they go: a terminal gets console lines, anything else JSON.
    """
    stream = stream or sys.stdout
    if json is None:
        json = not stream.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _name_database_error,
            structlog.processors.format_exc_info,
            _drop_server_details,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
