"""Verification and password-reset mails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from common import jobstats
from common.jobs import JobName
from common.logging import get_logger
from common.models import ActionToken, ActionTokenPurpose, User
from common.security.tokens import action_token_for
from worker.mail.delivery import deliver_once
from worker.mail.render import RenderedMail, render_mail
from worker.mail.tasks import mail_task
from worker.runtime import WorkerRuntime

log = get_logger(__name__)


async def _action_mail(
    runtime: WorkerRuntime, token_id: str, purpose: ActionTokenPurpose
) -> tuple[str, str, RenderedMail] | None:
    """(idempotency key, address, mail) for a token still worth mailing, else None."""
    settings = runtime.settings
    async with runtime.session_factory() as session:
        action = await session.get(ActionToken, uuid.UUID(token_id))
        if action is None or action.purpose is not purpose:
            log.warning("mail_token_missing", token_id=token_id)
            return None
        if action.used_at is not None or action.expires_at <= datetime.now(UTC):
            log.info("mail_token_no_longer_valid", token_id=token_id)
            return None
        user = await session.get(User, action.user_id)
        assert user is not None
    token = action_token_for(settings, action.id)
    if purpose is ActionTokenPurpose.VERIFY_EMAIL:
        link = f"{settings.public_url}/api/v1/auth/verify-email?{urlencode({'token': token})}"
        mail = render_mail(
            "verify_email",
            full_name=user.full_name,
            link=link,
            valid_hours=settings.email_token_ttl // 3600,
        )
    else:
        mail = render_mail(
            "reset_password",
            full_name=user.full_name,
            reset_endpoint=f"{settings.public_url}/api/v1/auth/reset-password",
            token=token,
            valid_minutes=settings.password_reset_token_ttl // 60,
        )
    return f"action:{action.id}", user.email, mail


async def send_action_mail(
    runtime: WorkerRuntime, token_id: str, purpose: ActionTokenPurpose
) -> bool:
    """Mail the link of one action token; skip tokens already used or expired."""
    found = await _action_mail(runtime, token_id, purpose)
    if found is None:
        return False
    key, address, mail = found
    sent = await deliver_once(runtime, idempotency_key=key, to=address, mail=mail)
    if sent:
        await jobstats.record(runtime.redis, "mails", {purpose.value: 1})
    return sent


@mail_task(JobName.SEND_VERIFICATION_EMAIL)
async def send_verification_email(runtime: WorkerRuntime, token_id: str) -> bool:
    return await send_action_mail(runtime, token_id, ActionTokenPurpose.VERIFY_EMAIL)


@mail_task(JobName.SEND_PASSWORD_RESET_EMAIL)
async def send_password_reset_email(runtime: WorkerRuntime, token_id: str) -> bool:
    return await send_action_mail(runtime, token_id, ActionTokenPurpose.RESET_PASSWORD)
