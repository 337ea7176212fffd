"""Link mails: verification, password reset, address change."""

from __future__ import annotations

import uuid

from common.auth.links import ActionLinks
from common.jobs import JobName
from common.models import ActionTokenPurpose
from worker.mail.delivery import deliver_once
from worker.mail.messages import link_mail
from worker.mail.tasks import mail_task
from worker.runtime import WorkerRuntime


async def send_link(runtime: WorkerRuntime, token_id: str, purpose: ActionTokenPurpose) -> bool:
    """Mail the link of one action token; tokens used, expired or gone send nothing."""
    async with runtime.unit_of_work() as uow:
        link = await ActionLinks(uow, runtime.settings).to_mail(uuid.UUID(token_id), purpose)
    return link is not None and await deliver_once(runtime, link_mail(runtime.settings, link))


@mail_task(JobName.SEND_VERIFICATION_EMAIL)
async def send_verification_email(runtime: WorkerRuntime, token_id: str) -> bool:
    return await send_link(runtime, token_id, ActionTokenPurpose.VERIFY_EMAIL)


@mail_task(JobName.SEND_PASSWORD_RESET_EMAIL)
async def send_password_reset_email(runtime: WorkerRuntime, token_id: str) -> bool:
    return await send_link(runtime, token_id, ActionTokenPurpose.RESET_PASSWORD)


@mail_task(JobName.SEND_EMAIL_CHANGE_LINK)
async def send_email_change_link(runtime: WorkerRuntime, token_id: str) -> bool:
    return await send_link(runtime, token_id, ActionTokenPurpose.CHANGE_EMAIL)
