"""Mail jobs waiting on the broker: what the API asked the worker to send."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from redis.asyncio import Redis

from common.auth.tokens import action_token_for
from common.config import Settings

VERIFICATION = "taskpipe.email.send_verification"
PASSWORD_RESET = "taskpipe.email.send_password_reset"
EMAIL_CHANGE = "taskpipe.email.send_email_change"
ACCOUNT_NOTICE = "taskpipe.email.send_account_notice"


async def queued_jobs(broker: Redis, task: str, queue: str = "email") -> list[dict[str, Any]]:
    """The arguments of the `task` jobs queued so far, oldest first."""
    found = []
    for raw in reversed(await broker.lrange(queue, 0, -1)):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append(kwargs)
    return found


async def mailed_token_ids(broker: Redis, task: str) -> list[uuid.UUID]:
    """The token ids of the `task` mails queued so far, oldest first."""
    return [uuid.UUID(kwargs["token_id"]) for kwargs in await queued_jobs(broker, task)]


async def mailed_tokens(broker: Redis, settings: Settings, task: str) -> list[str]:
    """The tokens of the `task` mails queued so far, rebuilt from the ids as the worker does."""
    return [action_token_for(settings, i) for i in await mailed_token_ids(broker, task)]
