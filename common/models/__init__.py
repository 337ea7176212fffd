"""Every ORM model, imported here so Alembic's autogenerate sees the whole schema."""

from common.models.auth import ActionToken, ActionTokenPurpose, RefreshToken, RefreshTokenFamily
from common.models.category import Category, task_categories
from common.models.jobs import IdempotencyKey, OutboxJob, SentEmail
from common.models.mail_quota import MailQuota
from common.models.sync import ChangeCounter, ChangeFeedEntry, ChangeOp, EntityKind
from common.models.task import OPEN_STATUSES, Task, TaskPriority, TaskStatus
from common.models.user import User

__all__ = [
    "OPEN_STATUSES",
    "ActionToken",
    "ActionTokenPurpose",
    "Category",
    "ChangeCounter",
    "ChangeFeedEntry",
    "ChangeOp",
    "EntityKind",
    "IdempotencyKey",
    "MailQuota",
    "OutboxJob",
    "RefreshToken",
    "RefreshTokenFamily",
    "SentEmail",
    "Task",
    "TaskPriority",
    "TaskStatus",
    "User",
    "task_categories",
]
