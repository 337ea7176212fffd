"""What each mail says: a link mail, a reminder digest, an account notice, an export and a
disabled webhook, from what the services assembled."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from common.accounts.exports import ExportMail
from common.accounts.notices import NoticeMail
from common.auth.links import LinkMail
from common.config import Settings
from common.models import ActionTokenPurpose, ActivityKind
from common.reminders.service import Digest
from common.webhooks.notices import DisabledNotice
from worker.mail.render import RenderedMail, render_mail


@dataclass(frozen=True, slots=True)
class Outgoing:
    idempotency_key: str
    """One mail per key, however often its job runs (`worker.mail.delivery`)."""
    to: str
    mail: RenderedMail
    kind: str
    """How the mail is counted in the job statistics."""


_LINK_TEMPLATES = {
    ActionTokenPurpose.VERIFY_EMAIL: ("verify_email", "verify-email"),
    ActionTokenPurpose.CHANGE_EMAIL: ("confirm_email_change", "confirm-email-change"),
}
"""Links followed in a browser: the template and the route the link opens."""
_NOTICE_TEMPLATES = {
    ActivityKind.PASSWORD_CHANGED: "password_changed",
    ActivityKind.EMAIL_CHANGE_REQUESTED: "email_change_requested",
    ActivityKind.DELETION_REQUESTED: "deletion_requested",
}


def link_mail(settings: Settings, link: LinkMail) -> Outgoing:
    if link.purpose in _LINK_TEMPLATES:
        template, route = _LINK_TEMPLATES[link.purpose]
        url = f"{settings.public_url}/api/v1/auth/{route}?{urlencode({'token': link.token})}"
        mail = render_mail(
            template,
            full_name=link.full_name,
            link=url,
            valid_hours=settings.email_token_ttl // 3600,
        )
    else:
        mail = render_mail(
            "reset_password",
            full_name=link.full_name,
            reset_endpoint=f"{settings.public_url}/api/v1/auth/reset-password",
            token=link.token,
            valid_minutes=settings.password_reset_token_ttl // 60,
        )
    return Outgoing(f"action:{link.token_id}", link.address, mail, link.purpose.value)


def digest_mail(digest: Digest) -> Outgoing:
    mail = render_mail(
        "due_reminder",
        full_name=digest.full_name,
        time_zone=digest.time_zone,
        minutes_before=digest.minutes_before,
        tasks=[asdict(task) for task in digest.tasks],
    )
    return Outgoing(f"reminder:{digest.batch_id}", digest.address, mail, "due_reminder")


def _moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def notice_mail(settings: Settings, notice: NoticeMail) -> Outgoing:
    mail = render_mail(
        _NOTICE_TEMPLATES[notice.kind],
        public_url=settings.public_url,
        occurred_at=_moment(notice.occurred_at),
        ip_network=notice.ip_network,
        user_agent=notice.user_agent,
        new_email=notice.detail.get("new_email", ""),
        restore_token=notice.restore_token,
        erase_after=_moment(notice.erase_after),
    )
    return Outgoing(f"notice:{notice.event_id}", notice.address, mail, notice.kind.value)


def export_mail(ready: ExportMail) -> Outgoing:
    mail = render_mail(
        "export_ready",
        link=ready.url,
        expires_at=_moment(ready.expires_at),
        size_kib=max(1, ready.size // 1024),
    )
    return Outgoing(f"export:{ready.export_id}", ready.address, mail, "export_ready")


def webhook_disabled_mail(notice: DisabledNotice) -> Outgoing:
    mail = render_mail(
        "webhook_disabled",
        full_name=notice.full_name,
        url=notice.url,
        reason=notice.reason,
        webhook_link=notice.link,
    )
    key = f"webhook-disabled:{notice.webhook_id}:{notice.disabled_at.isoformat()}"
    return Outgoing(key, notice.address, mail, "webhook_disabled")
