"""Every ORM model, imported here so Alembic's autogenerate sees the whole schema."""

from common.models.accounts import (
    AccountEvent,
    AccountExport,
    ActivityKind,
    ExportStatus,
    PersonalAccessToken,
)
from common.models.auth import ActionToken, ActionTokenPurpose, RefreshToken, RefreshTokenFamily
from common.models.category import Category, task_categories
from common.models.jobs import IdempotencyKey, OutboxJob, SentEmail
from common.models.mail_quota import MailQuota
from common.models.sync import ChangeCounter, ChangeFeedEntry, ChangeOp, EntityKind
from common.models.task import OPEN_STATUSES, Task, TaskPriority, TaskStatus
from common.models.user import User
from common.models.webhook import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "OPEN_STATUSES",
    "AccountEvent",
    "AccountExport",
    "ActionToken",
    "ActionTokenPurpose",
    "ActivityKind",
    "Category",
    "ChangeCounter",
    "ChangeFeedEntry",
    "ChangeOp",
    "DeliveryStatus",
    "EntityKind",
    "ExportStatus",
    "IdempotencyKey",
    "MailQuota",
    "OutboxJob",
    "PersonalAccessToken",
    "RefreshToken",
    "RefreshTokenFamily",
    "SentEmail",
    "Task",
    "TaskPriority",
    "TaskStatus",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "task_categories",
]
