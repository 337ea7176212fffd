"""Mail jobs waiting on the broker: what the API asked the worker to send."""

from __future__ import annotations

import base64
import json
import uuid

from redis.asyncio import Redis

from common.auth.tokens import action_token_for
from common.config import Settings

VERIFICATION = "taskpipe.email.send_verification"
PASSWORD_RESET = "taskpipe.email.send_password_reset"


async def mailed_token_ids(broker: Redis, task: str) -> list[uuid.UUID]:
    """The token ids of the `task` mails queued so far, oldest first."""
    found = []
    for raw in reversed(await broker.lrange("email", 0, -1)):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append(uuid.UUID(kwargs["token_id"]))
    return found


async def mailed_tokens(broker: Redis, settings: Settings, task: str) -> list[str]:
    """The tokens of the `task` mails queued so far, rebuilt from the ids as the worker does."""
    return [action_token_for(settings, i) for i in await mailed_token_ids(broker, task)]
