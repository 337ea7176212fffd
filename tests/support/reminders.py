"""The reminder service as the scan job runs it: a claim in a unit of work that commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.resources import Resources
from common.config import Settings
from common.db.uow import UnitOfWork
from common.reminders.service import Digest, ReminderBatch, ReminderService


async def claim(
    session: AsyncSession, resources: Resources, now: datetime, settings: Settings | None = None
) -> list[ReminderBatch]:
    uow = UnitOfWork(session, resources.publisher)
    batches = await ReminderService(uow, settings or resources.settings).claim_due(now)
    await uow.commit()
    return batches


async def digest(
    session: AsyncSession, resources: Resources, user_id: uuid.UUID, task_ids: list[uuid.UUID]
) -> Digest | None:
    uow = UnitOfWork(session, resources.publisher)
    return await ReminderService(uow, resources.settings).digest(uuid.uuid4(), user_id, task_ids)
