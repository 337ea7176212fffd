"""Account erasure: the hourly scan for accounts whose grace period is over, and the job that
erases one (in batches; see `common.accounts.erasure`)."""

from __future__ import annotations

import uuid

from common import jobstats
from common.accounts.erasure import Erasure, due_accounts, erase_account
from common.accounts.errors import NoticePending
from common.jobs import JobName, Queue
from worker.policy import RetryPolicy, job
from worker.runtime import WorkerRuntime

NOTICE_RETRY = RetryPolicy(
    retry_on=(NoticePending,), max_retries=30, backoff_seconds=5, backoff_max_seconds=60
)
"""The account's last notice is on its way: a few seconds, at most the mail's own retries."""
SCAN_LIMIT = 100


@job(JobName.ERASE_ACCOUNT, soft_time_limit=150, time_limit=180, policy=NOTICE_RETRY)
async def erase(runtime: WorkerRuntime, user_id: str) -> str:
    outcome = await erase_account(
        runtime.unit_of_work, uuid.UUID(user_id), batch_size=runtime.settings.purge_batch_size
    )
    if outcome is Erasure.ERASED:
        await jobstats.record(runtime.redis, "accounts", {"erased": 1})
    return outcome.value


@job(JobName.ERASE_DUE_ACCOUNTS, soft_time_limit=50, time_limit=60)
async def erase_due(runtime: WorkerRuntime) -> int:
    """One erasure job per due account; running twice is harmless (an erasure of an erased
    account does nothing), and an erasure cut short is picked up again here."""
    async with runtime.unit_of_work() as uow:
        due = await due_accounts(uow, limit=SCAN_LIMIT)
        for user_id in due:
            uow.enqueue(JobName.ERASE_ACCOUNT, Queue.MAINTENANCE, user_id=str(user_id))
    return len(due)
