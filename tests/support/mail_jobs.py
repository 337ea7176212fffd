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


async def mailed_tokens(broker: Redis, settings: Settings, task: str) -> list[str]:
    """The tokens of the `task` mails queued so far, oldest first, rebuilt from each job's
    token id exactly as the worker does."""
    found = []
    for raw in reversed(await broker.lrange("email", 0, -1)):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append(action_token_for(settings, uuid.UUID(kwargs["token_id"])))
    return found
