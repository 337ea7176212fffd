"""Account notices: the mail that tells an owner what was done to their account."""

from __future__ import annotations

import uuid

from common.accounts.notices import AccountNotices
from common.jobs import JobName
from worker.mail.delivery import deliver_once
from worker.mail.messages import notice_mail
from worker.mail.tasks import mail_task
from worker.runtime import WorkerRuntime


@mail_task(JobName.SEND_ACCOUNT_NOTICE)
async def send_account_notice(runtime: WorkerRuntime, event_id: str, user_id: str) -> bool:
    """`user_id` only marks whose notice is in flight (the erasure waits for it)."""
    async with runtime.unit_of_work() as uow:
        notice = await AccountNotices(uow, runtime.settings).to_mail(uuid.UUID(event_id))
    return notice is not None and await deliver_once(runtime, notice_mail(runtime.settings, notice))
