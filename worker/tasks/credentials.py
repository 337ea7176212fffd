"""The revocation marks of ended sessions and personal tokens, set again by a job.

The API sets them right after the commit that ended the credentials; this job, enqueued in that
same transaction, sets them once more from the worker, so a mark that the API could not write
(the security Redis was down) is written once Redis is back instead of being forgotten: the
outbox keeps the job until it succeeds.
"""

from __future__ import annotations

import uuid

from common.auth.revocation import TokenRevocations
from common.jobs import JobName
from common.redis import REDIS_ERRORS, create_redis
from worker.policy import RetryPolicy, job
from worker.runtime import WorkerRuntime

REDIS_RETRY = RetryPolicy(retry_on=REDIS_ERRORS, max_retries=20, backoff_max_seconds=300)
"""Redis away: retried for about an hour (longer waits go back to the outbox)."""


@job(JobName.REVOKE_CREDENTIALS, soft_time_limit=20, time_limit=30, policy=REDIS_RETRY)
async def revoke_credentials(
    runtime: WorkerRuntime, user_id: str, credential_ids: list[str]
) -> int:
    settings = runtime.settings
    redis = create_redis(settings, settings.security_store_url)
    try:
        await TokenRevocations.from_settings(redis, settings).revoke_or_raise(
            uuid.UUID(user_id), [uuid.UUID(i) for i in credential_ids]
        )
    finally:
        await redis.aclose()
    return len(credential_ids)
